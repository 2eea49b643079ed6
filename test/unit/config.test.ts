import { describe, expect, it } from 'vitest';
import { ConfigError, parseConfig, usage } from '../../controller/config.js';

const env = { NODE_NAME: 'node-a' };

describe('parseConfig', () => {
  it('fills defaults and reads the node name from NODE_NAME', () => {
    const config = parseConfig([], env);
    expect(config).toMatchObject({
      nodeName: 'node-a',
      dockerSocket: '/var/run/docker.sock',
      dockerRoot: '/var/lib/docker',
      maxConcurrentRestores: 10,
      metricsHost: '0.0.0.0',
      metricsPort: 9464,
      logLevel: 'info',
      namespace: undefined,
      kubeconfig: undefined,
      // Host protection: a cap a single-tenant host does not meet, no memory-limit rule.
      maxReplicasPerHost: 500,
      requireMemoryLimit: false,
      // Secure metrics serving by default, self-signed.
      metricsSecure: true,
      metricsCertFile: undefined,
      dockerTimeoutSeconds: 30,
      wedgedAfterSeconds: 120,
    });
    expect(parseConfig(['--max-replicas-per-host=0', '--require-memory-limit=true'], env)).toMatchObject({ maxReplicasPerHost: 0, requireMemoryLimit: true });
  });

  it('reads the Docker deadline and the wedge time from flags or env', () => {
    expect(parseConfig(['--docker-timeout-seconds', '5'], { ...env, WEDGED_AFTER_SECONDS: '20' })).toMatchObject({
      dockerTimeoutSeconds: 5,
      wedgedAfterSeconds: 20,
    });
  });

  it('prefers flags (both --flag value and --flag=value) over env', () => {
    const config = parseConfig(['--node-name', 'node-b', '--max-concurrent-restores=3', '--metrics-address', '127.0.0.1:9000', '--namespace=team-a'], {
      ...env,
      MAX_CONCURRENT_RESTORES: '7',
    });
    expect(config).toMatchObject({ nodeName: 'node-b', maxConcurrentRestores: 3, metricsHost: '127.0.0.1', metricsPort: 9000, namespace: 'team-a' });
  });

  it.each([
    [[], {}, 'node-name', 'is required'],
    [['--max-concurrent-restores', '11'], env, 'max-concurrent-restores', 'from 1 to 10'],
    [['--max-concurrent-restores', '0'], env, 'max-concurrent-restores', 'from 1 to 10'],
    [['--log-level', 'loud'], env, 'log-level', 'not one of'],
    [['--metrics-address', '9464'], env, 'metrics-address', 'host:port'],
    [['--docker-root', 'var/lib/docker'], env, 'docker-root', 'absolute path'],
    [['--node-name', 'Node_A'], {}, 'node-name', 'not a valid Kubernetes node name'],
    [['--bogus', 'x'], env, 'bogus', 'unknown flag'],
    [['--workers'], env, 'workers', 'needs a value'],
    [['--max-replicas-per-host', '-1'], env, 'max-replicas-per-host', 'whole number from 0'],
    [['--require-memory-limit', 'yes'], env, 'require-memory-limit', 'true or false'],
    [['--metrics-cert-file', '/c.pem'], env, 'metrics-key-file', 'give both'],
    [['--metrics-secure=false', '--metrics-cert-file=/c', '--metrics-key-file=/k'], env, 'metrics-cert-file', 'plain HTTP'],
    [['--docker-timeout-seconds', '0'], env, 'docker-timeout-seconds', 'from 1 to 600'],
    [['--wedged-after-seconds', '2'], env, 'wedged-after-seconds', 'from 5 to 3600'],
  ] as const)('rejects %j with an error naming --%s', (argv, environment, flag, reason) => {
    let caught: unknown;
    try {
      parseConfig(argv, environment);
    } catch (err) {
      caught = err;
    }
    expect(caught).toBeInstanceOf(ConfigError);
    expect((caught as ConfigError).flag).toBe(flag);
    expect((caught as ConfigError).code).toBe('InvalidConfig');
    expect((caught as ConfigError).message).toContain(`--${flag}`);
    expect((caught as ConfigError).message).toContain(reason);
  });

  it('documents every flag with its environment variable', () => {
    expect(usage()).toContain('--max-concurrent-restores');
    expect(usage()).toContain('MAX_CONCURRENT_RESTORES');
  });
});

describe('--node-address (issue 15)', () => {
  it('takes an IP from the flag or NODE_IP, and is unset by default', () => {
    expect(parseConfig([], env).nodeAddress).toBeUndefined();
    expect(parseConfig(['--node-address=10.1.2.3'], env).nodeAddress).toBe('10.1.2.3');
    expect(parseConfig([], { ...env, NODE_IP: 'fd00::5' }).nodeAddress).toBe('fd00::5');
  });

  it('refuses a non-address and loopback (EndpointSlices refuse loopback), naming the flag', () => {
    expect(() => parseConfig(['--node-address=node-a.local'], env)).toThrow(/--node-address: "node-a.local" must be an IPv4 or IPv6 address/);
    expect(() => parseConfig(['--node-address=127.0.0.1'], env)).toThrow(/--node-address: "127.0.0.1" is a loopback address/);
    expect(() => parseConfig(['--node-address=127.0.0.1'], env)).toThrow(ConfigError);
  });
});
