// reuseAgents: the apiserver calls share one keep-alive agent instead of a new TLS context per call.
import { KubeConfig } from '@kubernetes/client-node';
import { describe, expect, it } from 'vitest';
import { reuseAgents } from '../../../controller/kube/agents.js';

function kubeconfig(server: string): KubeConfig {
  const kc = new KubeConfig();
  kc.loadFromOptions({
    clusters: [{ name: 'c', server, skipTLSVerify: false }],
    users: [{ name: 'u', token: 'secret-token' }],
    contexts: [{ name: 'x', cluster: 'c', user: 'u' }],
    currentContext: 'x',
  });
  return kc;
}

const agentOf = async (kc: KubeConfig): Promise<unknown> => ((await kc.applyToFetchOptions({})) as { agent?: unknown }).agent;

describe('reuseAgents', () => {
  it('client-node alone makes a new agent per request (why this exists); with reuseAgents one keep-alive agent serves them all', async () => {
    const plain = kubeconfig('https://127.0.0.1:6443');
    expect(await agentOf(plain)).not.toBe(await agentOf(plain));
    const reused = reuseAgents(kubeconfig('https://127.0.0.1:6443'));
    const first = await agentOf(reused);
    expect(await agentOf(reused)).toBe(first);
    expect((first as { keepAlive?: boolean }).keepAlive).toBe(true);
    // The token travels in a header, never in the agent: the shared agent holds no credential of a request.
    expect(JSON.stringify((first as { options?: unknown }).options ?? {})).not.toContain('secret-token');
  });

  it('a different server gets its own agent', async () => {
    const a = reuseAgents(kubeconfig('https://127.0.0.1:6443'));
    const b = reuseAgents(kubeconfig('https://127.0.0.2:6443'));
    expect(await agentOf(a)).not.toBe(await agentOf(b));
  });
});
