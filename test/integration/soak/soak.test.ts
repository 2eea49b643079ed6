// Soak (issue 10): what a host running the agent for weeks would accumulate, compressed into a few
// minutes of `npm test`. Restore/remove cycles of a tiny checkpoint through the real engine module,
// and resources created and deleted through the real apiserver and the real agent (in this process,
// so its heap after GC and its open handles can be measured): heap flat within a stated bound, no
// process warning, no growth in open handles, no checkpoint copy left on disk, no metric series left.
// Counts: CRS_SOAK_CYCLES (default 200; 1000 take about 5 minutes here) and CRS_SOAK_RESOURCES (default 200); the 1000-cycle figure
// is in docs/benchmarks.md (hack/bench/soak.ts).
import { createWriteStream } from 'node:fs';
import fs from 'node:fs/promises';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startAgent, type Agent } from '../../../controller/agent.js';
import type { AgentConfig } from '../../../controller/config.js';
import { OWNER_NAMESPACE } from '../../../controller/api/labels.js';
import type { DockerEngine } from '../../../controller/engine/docker-engine.js';
import { createLogger } from '../../../controller/log.js';
import { containersOf, docker, makeSource, newEngine, specFor, uid, type Source } from '../engine/helpers.js';
import { freePort, sample } from '../support/agent.js';
import { installCrd, kubectl } from '../support/kubectl.js';
import { collectWarnings, diskLeftovers, failureCodes, handleGrowth, leakProbe, restoreRemoveCycles } from '../support/soak.js';
import { checkpointedSource, containersWithLabel } from '../support/workload.js';
import { testbed } from '../testbed.js';

const bed = testbed();
const d = docker(bed);
const CYCLES = Number(process.env['CRS_SOAK_CYCLES'] ?? 200);
const RESOURCES = Number(process.env['CRS_SOAK_RESOURCES'] ?? 200);
const MiB = 2 ** 20;
const stamp = Date.now().toString(36);

function log(line: string): void {
  process.stdout.write(`[soak] ${line}\n`);
}

describe('soak: the engine module', () => {
  let source: Source;
  let engine: DockerEngine;

  beforeAll(async () => {
    source = await makeSource(bed, 'crs-soak-src', 'engine-it', 1);
    // No stop grace: the sample app ignores SIGTERM, and the soak is about what removal leaves, not its speed.
    engine = await newEngine(bed, { stopTimeoutSeconds: 0 });
  });
  afterAll(async () => {
    await engine?.close();
    await d
      .getContainer('crs-soak-src')
      .remove({ force: true })
      .catch(() => undefined);
  });

  it(`${CYCLES} restore/remove cycles of a tiny checkpoint: heap flat, no warning, no new handle, nothing left on disk`, async () => {
    const owner = { uid: uid(), namespace: 'engine-it', name: 'soak' };
    const specOf = (i: number) => specFor(source, owner, `s${i}`, { template: { image: source.imageId, env: [{ name: 'APP_MEMORY_MB', value: '1' }] } });
    const disk0 = await diskLeftovers(bed);
    // Warm-up: module caches, connection pools and JIT reach their steady size first.
    await restoreRemoveCycles(engine, 30, 10, (i) => specOf(100_000 + i));
    const before = leakProbe();
    const { result, warnings } = await collectWarnings(() => restoreRemoveCycles(engine, CYCLES, 10, specOf));
    const after = leakProbe();
    log(
      `engine: ${CYCLES} cycles in ${result.seconds.toFixed(1)} s; heap after GC ${(before.heapBytes / MiB).toFixed(1)} -> ${(after.heapBytes / MiB).toFixed(1)} MiB; handles ${JSON.stringify(before.handles)} -> ${JSON.stringify(after.handles)}`,
    );
    // Under heavy load CRIU itself fails now and then ("criu failed: type NOTIFY errno 0", 7 in 1000
    // here with the machine's load average above 30): not a leak, and each such failure must still
    // clean up after itself, which the checks below prove. Anything else is a defect.
    log(`engine: failures ${JSON.stringify(failureCodes(result))}`);
    expect(result.failures.filter((f) => f.code !== 'CriuFailed')).toEqual([]);
    expect(result.failures.length).toBeLessThanOrEqual(Math.ceil(CYCLES * 0.03));
    expect(warnings).toEqual([]);
    // Measured in this test: +0.2 MiB over 100 cycles, +0.5 and +0.7 MiB over 200 (the benchmark, in a
    // quieter process: +0.43 MiB over 1000, docs/benchmarks.md). 2 MiB over 200 cycles fails for a leak
    // of about 10 KB a cycle or more (a socket's buffers, an actor or a response kept per restore);
    // the benchmark's bytes-per-cycle figure is the finer instrument.
    expect(after.heapBytes - before.heapBytes).toBeLessThan(2 * MiB);
    expect(handleGrowth(before, after)).toEqual({});
    expect(await diskLeftovers(bed)).toEqual(disk0);
    expect(await containersOf(bed, owner.uid)).toEqual([]);
    expect(engine.pendingRemovalIds).toEqual([]);
  });
});

describe('soak: the agent', () => {
  const namespace = `soak-${stamp}`;
  const sourceName = `${namespace}-source`;
  const k = kubectl(bed);
  let agent: Agent | undefined;
  let metricsUrl = '';
  let logFile = '';
  let logStream: ReturnType<typeof createWriteStream> | undefined;

  beforeAll(async () => {
    await installCrd(bed);
    await k('create', 'namespace', namespace);
    await checkpointedSource(bed, { containerName: sourceName, checkpointName: 'warm', allowNamespaces: namespace, memoryMb: 1 });
    const port = await freePort();
    metricsUrl = `http://127.0.0.1:${port}`;
    await fs.mkdir(path.join(bed.repoRoot, '.local/logs'), { recursive: true });
    logFile = path.join(bed.repoRoot, '.local/logs', `soak-agent-${stamp}.log`);
    logStream = createWriteStream(logFile);
    const config: AgentConfig = {
      kubeconfig: bed.kubeconfig,
      nodeName: `soak-${stamp}`,
      dockerSocket: bed.dockerSocket,
      dockerRoot: bed.dockerRoot,
      checkpointRoot: '/nonexistent-crs-soak',
      containerdTmp: bed.containerdTmp,
      maxConcurrentRestores: 10,
      namespace,
      metricsHost: '127.0.0.1',
      metricsPort: port,
      logLevel: 'info',
      resyncSeconds: 60,
      // A wave's deletions run side by side: each waits out the 10 s stop grace (the sample app, PID 1, ignores SIGTERM).
      workers: 40,
      dockerTimeoutSeconds: 30,
      wedgedAfterSeconds: 120,
      maxReplicasPerHost: 0,
      requireMemoryLimit: false,
      metricsSecure: false,
      metricsCertFile: undefined,
      metricsKeyFile: undefined,
      replicaProvenSeconds: 60,
      departedNodeGraceSeconds: 60,
    };
    const stream = logStream;
    agent = await startAgent(
      config,
      createLogger('info', (line) => stream.write(line + '\n')),
    );
    await agent.started;
  });

  afterAll(async () => {
    await agent?.stop();
    logStream?.end();
    await k('delete', 'namespace', namespace, '--wait=false').catch(() => undefined);
    for (const c of await containersWithLabel(bed, OWNER_NAMESPACE, namespace))
      await d
        .getContainer(c.id)
        .remove({ force: true })
        .catch(() => undefined);
    await d
      .getContainer(sourceName)
      .remove({ force: true })
      .catch(() => undefined);
  });

  function manifest(names: string[]): string {
    return JSON.stringify({
      apiVersion: 'v1',
      kind: 'List',
      items: names.map((name) => ({
        apiVersion: 'checkpoint.dev/v1alpha1',
        kind: 'CheckpointReplicaSet',
        metadata: { name, namespace },
        spec: {
          replicas: 1,
          checkpoint: { container: sourceName, name: 'warm' },
          template: { image: bed.sampleImage, env: [{ name: 'APP_MEMORY_MB', value: '1' }] },
          restore: { timeoutSeconds: 60 },
        },
      })),
    });
  }

  /** Creates `count` resources, waits until each has its replica ready, deletes them all and waits until they are gone. */
  async function wave(prefix: string, count: number): Promise<void> {
    const names = Array.from({ length: count }, (_, i) => `${prefix}-${i}`);
    await k.apply(manifest(names));
    const deadline = Date.now() + 180_000;
    for (;;) {
      const list = await k.json<{ items: { metadata: { name: string }; status?: { readyReplicas?: number } }[] }>('-n', namespace, 'get', 'crs');
      const ready = list.items.filter((r) => names.includes(r.metadata.name) && r.status?.readyReplicas === 1).length;
      if (ready === count) break;
      if (Date.now() > deadline) throw new Error(`wave ${prefix}: ${ready}/${count} ready within 180 s; see ${logFile}`);
      await new Promise((r) => setTimeout(r, 500));
    }
    await k('-n', namespace, 'delete', 'crs', ...names, '--timeout=180s');
  }

  it(`${RESOURCES} resources created and deleted: heap flat, no warning, no new handle, no series or file left`, async () => {
    const disk0 = await diskLeftovers(bed);
    const waveSize = 40;
    await wave('warm', waveSize);
    const before = leakProbe();
    const t0 = performance.now();
    const { warnings } = await collectWarnings(async () => {
      for (let done = 0; done < RESOURCES; done += waveSize) await wave(`w${done}`, Math.min(waveSize, RESOURCES - done));
    });
    // Let the last deletions' stragglers (status writes, Events) settle before measuring.
    await new Promise((r) => setTimeout(r, 3000));
    const after = leakProbe();
    log(
      `agent: ${RESOURCES} resources in ${((performance.now() - t0) / 1000).toFixed(1)} s; heap after GC ${(before.heapBytes / MiB).toFixed(1)} -> ${(after.heapBytes / MiB).toFixed(1)} MiB; handles ${JSON.stringify(before.handles)} -> ${JSON.stringify(after.handles)}`,
    );
    expect(warnings).toEqual([]);
    expect(await fs.readFile(logFile, 'utf8')).not.toMatch(/MaxListenersExceededWarning|memory leak detected/);
    // Measured: +0.4 to +0.9 MiB over 80 resources, +1.7 MiB over 200; a heap snapshot diff over 80
    // shows about 1.1 KB of objects a resource, all in the Event aggregator's tables (bounded at 4096
    // entries each), the rest is the engine's own (compiled code, string tables). 4 MiB over 200
    // resources fails for a leak of about 20 KB a resource or more (a reconcile actor, a cached object,
    // a status writer entry or a set of metric series kept per deleted resource).
    expect(after.heapBytes - before.heapBytes).toBeLessThan(4 * MiB);
    expect(handleGrowth(before, after)).toEqual({});
    expect(await containersWithLabel(bed, OWNER_NAMESPACE, namespace)).toEqual([]);
    expect(await diskLeftovers(bed)).toEqual(disk0);
    // Every per-resource series went with its resource.
    const text = await (await fetch(`${metricsUrl}/metrics`)).text();
    expect(text.split('\n').filter((l) => l.includes(`namespace="${namespace}"`))).toEqual([]);
    expect(sample(text, 'crs_restores_in_flight', { node: `soak-${stamp}` })).toBe(0);
  });
});
