// How GitOps tools read a CheckpointReplicaSet, proven with their own code against the live test
// bed and the real agent: kstatus (sigs.k8s.io/cli-utils, behind Flux's `wait` and `healthChecks`)
// and Argo CD's Lua health check (manifests/argocd/..., run in gopher-lua as Argo CD runs it).
// With CRS_CAPTURE_ARGOCD_TESTDATA=1 the objects seen in each state are written to the health
// check's testdata/ (how those files were made).
import { execFileSync } from 'node:child_process';
import { cpSync, mkdirSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import { OWNER_UID } from '../../../controller/api/labels.js';
import type { CheckpointReplicaSet, Condition } from '../../../controller/api/types.js';
import { type RunningAgent, sample, startAgent } from '../support/agent.js';
import { ARGOCD_HEALTH_DIR, type GitopsCheck, gitopsCheck } from '../support/gitops.js';
import { installCrd, kubectl } from '../support/kubectl.js';
import { type E2eRun, cleanUpRun, sampleManifest } from '../support/e2e.js';
import { checkpointedSource, containersWithLabel } from '../support/workload.js';
import { testbed } from '../testbed.js';

const bed = testbed();
const k = kubectl(bed);
const namespace = `gitops-${Date.now().toString(36)}`;
const node = `gitops-node-${Date.now().toString(36)}`;
const sourceName = `${namespace}-source`;
const HOLD = 'e2e.checkpoint.dev/hold';
let agent: RunningAgent | undefined;
let tools: GitopsCheck;
let sourceId = '';

const run: E2eRun = { namespace, node, sourceName };
const manifest = (name: string, replicas: number, container = sourceName) => sampleManifest(bed, run, name, replicas, { container });

const get = (name: string) => k.json<CheckpointReplicaSet>('-n', namespace, 'get', 'crs', name);
const condition = (crs: CheckpointReplicaSet, type: Condition['type']) => crs.status?.conditions?.find((c) => c.type === type);
const observed = (crs: CheckpointReplicaSet) => crs.status?.observedGeneration === crs.metadata.generation;

// Where spec.checkpoint.path may point (the agent's --checkpoint-root).
const checkpointRoot = path.join(bed.repoRoot, '.local', `${namespace}-checkpoints`);

async function startTheAgent(): Promise<void> {
  // The agent takes a checkpoint root only if it exists when it starts.
  mkdirSync(checkpointRoot, { recursive: true });
  agent = await startAgent(bed, { nodeName: node, namespace, logLevel: 'info', checkpointRoot });
  await agent.ready();
}

/** Polls the object until `accept` holds; returns that snapshot. */
async function until(name: string, what: string, accept: (crs: CheckpointReplicaSet) => boolean, timeoutMs = 120_000, everyMs = 100) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const crs = await get(name);
    if (accept(crs)) return crs;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}; last status ${JSON.stringify(crs.status)}`);
    await new Promise((r) => setTimeout(r, everyMs));
  }
}

/** kstatus and Argo CD's reading, after checking Flux's two readers agree with kstatus. */
async function both(crs: CheckpointReplicaSet) {
  const kstatus = await tools.kstatus(crs);
  // Flux's fork of kstatus (wait: true) reads exactly as upstream kstatus does.
  expect(await tools.fluxKstatus(crs)).toEqual(kstatus);
  // The documented healthCheckExprs agree, except that Flux's CEL path has no Terminating.
  const cel = await tools.fluxCel(crs);
  expect(cel.status).toBe(kstatus.status === 'Terminating' ? 'InProgress' : kstatus.status);
  return { kstatus, argocd: await tools.argocd(crs) };
}

/** Keeps a live object as Argo CD test data (only when asked: CRS_CAPTURE_ARGOCD_TESTDATA=1). */
function capture(state: string, crs: CheckpointReplicaSet): void {
  if (process.env.CRS_CAPTURE_ARGOCD_TESTDATA !== '1') return;
  // Without what only adds noise: managedFields and kubectl's copy of the applied manifest.
  const { managedFields: _m, annotations: _a, ...metadata } = crs.metadata as CheckpointReplicaSet['metadata'] & { managedFields?: unknown };
  const file = path.join(bed.repoRoot, ARGOCD_HEALTH_DIR, 'testdata', `${state}.yaml`);
  writeFileSync(file, `# Captured from the live test bed by test/integration/e2e/gitops-health.test.ts\n${stringify({ ...crs, metadata })}`);
}

beforeAll(async () => {
  tools = gitopsCheck(bed);
  await installCrd(bed);
  await k('create', 'namespace', namespace);
  await k.apply(JSON.stringify({ apiVersion: 'v1', kind: 'Node', metadata: { name: node } }));
  sourceId = await checkpointedSource(bed, { containerName: sourceName, checkpointName: 'warm', allowNamespaces: namespace });
});

afterAll(async () => {
  // A failed test may have left the object held by the test's own finalizer.
  await k('-n', namespace, 'patch', 'crs', 'app', '--type=merge', '-p', '{"metadata":{"finalizers":null}}').catch(() => undefined);
  await cleanUpRun(bed, k, run, agent);
  rmSync(checkpointRoot, { recursive: true, force: true });
});

describe('kstatus and Argo CD read a CheckpointReplicaSet right in every state', () => {
  it('a new object that no agent has acted on yet is InProgress / Progressing, never done', async () => {
    await k.apply(manifest('app', 6));
    const crs = await get('app');
    // The schema's default: the apiserver fills it when it reads the object.
    expect(crs.status?.observedGeneration).toBe(0);
    const { kstatus, argocd } = await both(crs);
    expect(kstatus).toEqual({ status: 'InProgress', message: 'CheckpointReplicaSet generation is 1, but latest observed generation is 0' });
    expect(argocd).toEqual({ status: 'Progressing', message: 'Waiting for the agents to observe generation 1' });
    // Without that default (an empty status, as before) kstatus would call the object done.
    expect((await tools.kstatus({ ...crs, status: undefined })).status).toBe('Current');
    capture('not-observed', crs);
  });

  it('while the agent restores, InProgress / Progressing (Reconciling)', async () => {
    await startTheAgent();
    const crs = await until('app', 'Reconciling at generation 1', (c) => observed(c) && condition(c, 'Reconciling') !== undefined, 60_000, 50);
    expect(condition(crs, 'Ready')).toMatchObject({ status: 'False', observedGeneration: 1 });
    expect(condition(crs, 'Stalled')).toBeUndefined();
    const { kstatus, argocd } = await both(crs);
    expect(kstatus.status).toBe('InProgress');
    expect(kstatus.message).toBe(condition(crs, 'Reconciling')!.message);
    expect(argocd.status).toBe('Progressing');
    capture('progressing', crs);
  });

  it('converged: Current / Healthy', async () => {
    await k('-n', namespace, 'wait', 'crs/app', '--for=condition=Ready', '--timeout=180s');
    const crs = await get('app');
    expect(crs.status).toMatchObject({ observedGeneration: 1, readyReplicas: 6 });
    expect(condition(crs, 'Reconciling')).toBeUndefined();
    const { kstatus, argocd } = await both(crs);
    expect(kstatus).toEqual({ status: 'Current', message: 'Resource is Ready' });
    expect(argocd).toEqual({ status: 'Healthy', message: `6 replicas ready on 1 node` });
    capture('healthy', crs);
  });

  it('the agent exports the checkpoint size it restores from (crs_checkpoint_size_bytes), as found on disk', async () => {
    const dir = path.join(bed.dockerRoot, 'containers', sourceId, 'checkpoints', 'warm');
    // Independently of the agent: the sum of the regular files' sizes.
    const onDisk = execFileSync('find', [dir, '-type', 'f', '-printf', '%s\n'], { encoding: 'utf8' })
      .trim()
      .split('\n')
      .reduce((sum, n) => sum + Number(n), 0);
    expect(onDisk).toBeGreaterThan(1 << 20); // a 16 MB workload's memory is in there
    const exported = sample(await agent!.metrics(), 'crs_checkpoint_size_bytes', { namespace, name: 'app', node });
    expect(exported).toBe(onDisk);
  });

  it('a spec change is InProgress / Progressing until the agent has observed it', async () => {
    // With the agent stopped the change cannot be observed, however long we look.
    await agent!.kill('SIGTERM');
    agent = undefined;
    await k('-n', namespace, 'scale', 'crs/app', '--replicas=8');
    const crs = await get('app');
    expect(crs.metadata.generation).toBe(2);
    expect(condition(crs, 'Ready')).toMatchObject({ status: 'True', observedGeneration: 1 });
    const { kstatus, argocd } = await both(crs);
    expect(kstatus).toEqual({ status: 'InProgress', message: 'CheckpointReplicaSet generation is 2, but latest observed generation is 1' });
    expect(argocd).toEqual({ status: 'Progressing', message: 'Waiting for the agents to observe generation 2' });
    await startTheAgent();
    const done = await until('app', 'Ready at generation 2', (c) => observed(c) && condition(c, 'Ready')?.status === 'True');
    expect((await tools.kstatus(done)).status).toBe('Current');
    expect(done.status?.readyReplicas).toBe(8);
  });

  it('paused short of its replicas: Failed (Stalled, Paused) / Suspended; unpaused it converges', async () => {
    await k('-n', namespace, 'patch', 'crs', 'app', '--type=merge', '-p', '{"spec":{"paused":true,"replicas":10}}');
    const crs = await until('app', 'Stalled Paused', (c) => observed(c) && condition(c, 'Stalled') !== undefined);
    expect(condition(crs, 'Stalled')).toMatchObject({ status: 'True', reason: 'Paused', observedGeneration: 3 });
    expect(condition(crs, 'Ready')).toMatchObject({ status: 'False', reason: 'Paused' });
    const { kstatus, argocd } = await both(crs);
    expect(kstatus.status).toBe('Failed');
    expect(kstatus.message).toContain('spec.paused is true with 8/10 replicas ready');
    expect(argocd).toEqual({ status: 'Suspended', message: 'spec.paused is true (8 replicas ready)' });
    capture('suspended', crs);
    await k('-n', namespace, 'patch', 'crs', 'app', '--type=merge', '-p', '{"spec":{"paused":false}}');
    const done = await until('app', 'Ready after unpausing', (c) => observed(c) && condition(c, 'Ready')?.status === 'True');
    expect(condition(done, 'Stalled')).toBeUndefined();
    expect((await tools.kstatus(done)).status).toBe('Current');
  });

  it('a rolling update (template change) is InProgress / Progressing (RollingUpdate) until every replica is new', async () => {
    // Down to 1 replica in the same change: each batch's removals wait for Docker's stop timeout.
    const change = [
      { op: 'replace', path: '/spec/replicas', value: 1 },
      { op: 'add', path: '/spec/template/env/-', value: { name: 'ROLLOUT', value: '2' } },
    ];
    await k('-n', namespace, 'patch', 'crs', 'app', '--type=json', '-p', JSON.stringify(change));
    const rolling = await until('app', 'RollingUpdate', (c) => observed(c) && condition(c, 'Reconciling')?.reason === 'RollingUpdate', 60_000, 50);
    const { kstatus, argocd } = await both(rolling);
    expect(kstatus.status).toBe('InProgress');
    expect(argocd.status).toBe('Progressing');
    expect(argocd.message).toMatch(/^RollingUpdate: /);
    const done = await until('app', 'Ready after the rollout', (c) => observed(c) && condition(c, 'Ready')?.status === 'True');
    expect((await both(done)).kstatus.status).toBe('Current');
  });

  it('a missing checkpoint is Failed / Degraded from the first status the agent writes', async () => {
    const started = Date.now();
    await k.apply(manifest('broken', 3, 'no-such-container'));
    // Every snapshot the agent has acted on is Failed: it never passes through "in progress".
    const crs = await until('broken', 'the first status of generation 1', observed, 60_000, 50);
    const seconds = (Date.now() - started) / 1000;
    expect(condition(crs, 'Stalled')).toMatchObject({ status: 'True', reason: 'CheckpointNotFound', observedGeneration: 1 });
    expect(condition(crs, 'Reconciling')).toBeUndefined();
    const { kstatus, argocd } = await both(crs);
    expect(kstatus.status).toBe('Failed');
    expect(kstatus.message).toContain('no container no-such-container');
    expect(argocd.status).toBe('Degraded');
    expect(argocd.message).toContain('CheckpointNotFound: node ');
    expect(seconds).toBeLessThan(30);
    capture('degraded', crs);
    await k('-n', namespace, 'delete', 'crs', 'broken', '--timeout=60s');
  });

  it('attempts spent (a corrupt checkpoint, maxAttempts 1) is Failed / Degraded, not InProgress', async () => {
    // A copy of the real checkpoint whose process tree CRIU cannot read: every restore fails in CRIU.
    // Path sources resolve only under <checkpoint-root>/<namespace>/ (README Security model).
    const corrupt = path.join(checkpointRoot, namespace, 'corrupt');
    cpSync(path.join(bed.dockerRoot, 'containers', sourceId, 'checkpoints', 'warm'), corrupt, { recursive: true });
    for (const f of readdirSync(corrupt)) if (/^(core|pstree)/.test(f)) writeFileSync(path.join(corrupt, f), 'garbage');
    await k.apply(sampleManifest(bed, run, 'spent', 1, { path: corrupt, maxAttempts: 1 }));
    const crs = await until('spent', 'Stalled after the one attempt', (c) => observed(c) && condition(c, 'Stalled') !== undefined);
    expect(condition(crs, 'Stalled')).toMatchObject({ status: 'True', reason: 'CriuFailed' });
    expect(condition(crs, 'Stalled')!.message).toContain('failed after spending their restore attempts');
    expect(crs.status?.failedReplicas).toBe(1);
    const { kstatus, argocd } = await both(crs);
    expect(kstatus.status).toBe('Failed');
    expect(argocd.status).toBe('Degraded');
    await k('-n', namespace, 'delete', 'crs', 'spent', '--timeout=60s');
  });

  it('deleting: Terminating / Progressing until the replicas are gone', async () => {
    const uid = (await get('app')).metadata.uid;
    // A finalizer of the test's own holds the object in its deleting state while we look.
    await k('-n', namespace, 'patch', 'crs', 'app', '--type=json', '-p', JSON.stringify([{ op: 'add', path: '/metadata/finalizers/-', value: HOLD }]));
    await k('-n', namespace, 'delete', 'crs', 'app', '--wait=false');
    const crs = await get('app');
    expect(crs.metadata.deletionTimestamp).toBeDefined();
    const { kstatus, argocd } = await both(crs);
    expect(kstatus).toEqual({ status: 'Terminating', message: 'Resource scheduled for deletion' });
    expect(argocd).toEqual({ status: 'Progressing', message: 'Pending deletion: the agents are removing the replicas' });
    capture('deleting', crs);
    // The agent removes every replica and releases its own finalizer; ours is the last.
    await until('app', "the agent's finalizer released", (c) => (c.metadata.finalizers ?? []).every((f) => f === HOLD));
    expect(await containersWithLabel(bed, OWNER_UID, uid)).toHaveLength(0);
    await k('-n', namespace, 'patch', 'crs', 'app', '--type=merge', '-p', '{"metadata":{"finalizers":null}}');
    await k('-n', namespace, 'wait', '--for=delete', 'crs/app', '--timeout=30s');
  });
});
