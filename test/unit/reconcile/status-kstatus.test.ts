// This node's entry follows kstatus: Reconciling while the agent works, Stalled when nothing will
// change without a change of spec or host, neither at rest; Ready, Progressing and Degraded always.
import { describe, expect, it } from 'vitest';
import { plan } from '../../../controller/reconcile/planner.js';
import { computeNodeStatus, type NodeStatusInput, type Progress } from '../../../controller/reconcile/status.js';
import { desired, input, readyReplicas } from './fixtures.js';

const NOW = new Date('2030-01-01T00:00:00Z');

function status(over: Partial<NodeStatusInput> & { ready?: number; replicas?: number }) {
  const { ready = 3, replicas = 3, ...rest } = over;
  const summary = plan(input({ desired: desired({ replicas, paused: rest.paused ?? false }), observed: readyReplicas(ready) })).summary;
  const entry = computeNodeStatus({
    node: 'node-a',
    generation: 2,
    summary,
    restoringNow: 0,
    paused: false,
    progress: { status: 'False', reason: 'Converged', message: 'ok' },
    now: NOW,
    ...rest,
  });
  return Object.fromEntries(entry.conditions!.map((c) => [c.type, c]));
}

const working = (reason: Progress['reason']): Progress => ({ status: 'True', reason, message: `${reason} now` });

describe('node conditions for kstatus', () => {
  it('at rest and ready: Ready True, neither Reconciling nor Stalled', () => {
    const c = status({});
    expect(Object.keys(c)).toEqual(['Ready', 'Progressing', 'Degraded']);
    expect(c['Ready']).toMatchObject({ status: 'True', observedGeneration: 2 });
  });

  it.each(['Restoring', 'RollingUpdate', 'ScalingDown', 'WaitingForReplicas', 'BackingOff'] as const)(
    'working (%s): Reconciling True with that reason, Ready False, no Stalled',
    (reason) => {
      const c = status({ ready: 1, progress: working(reason) });
      expect(c['Reconciling']).toMatchObject({ status: 'True', reason, message: `${reason} now`, observedGeneration: 2 });
      expect(c['Ready']).toMatchObject({ status: 'False', reason: 'ReplicasNotReady' });
      expect(c['Stalled']).toBeUndefined();
    },
  );

  it('degraded (missing checkpoint, attempts spent): Stalled True with the cause; Ready names it too', () => {
    const c = status({
      ready: 0,
      progress: { status: 'False', reason: 'Stalled', message: 'stopped until the cause is fixed: CheckpointNotFound' },
      degraded: { reason: 'CheckpointNotFound', message: 'no checkpoint warm on container app-template' },
    });
    expect(c['Stalled']).toMatchObject({ status: 'True', reason: 'CheckpointNotFound', message: 'no checkpoint warm on container app-template' });
    expect(c['Ready']).toMatchObject({ status: 'False', reason: 'CheckpointNotFound' });
    expect(c['Degraded']).toMatchObject({ status: 'True', reason: 'CheckpointNotFound' });
    expect(c['Reconciling']).toBeUndefined();
  });

  it('a probe batch while Degraded is work: Reconciling, not Stalled', () => {
    const c = status({ ready: 0, progress: working('Restoring'), degraded: { reason: 'RestoreFailed', message: 'x' } });
    expect(c['Reconciling']).toMatchObject({ status: 'True' });
    expect(c['Stalled']).toBeUndefined();
    expect(c['Degraded']).toMatchObject({ status: 'True' });
  });

  it('paused short of Ready is Stalled (Paused); paused and ready is at rest', () => {
    const paused: Progress = { status: 'False', reason: 'Paused', message: 'spec.paused is true' };
    const stuck = status({ ready: 1, paused: true, progress: paused });
    expect(stuck['Stalled']).toMatchObject({ status: 'True', reason: 'Paused' });
    expect(stuck['Stalled']!.message).toContain('1/3 replicas ready');
    expect(stuck['Ready']).toMatchObject({ status: 'False', reason: 'Paused' });
    const fine = status({ paused: true, progress: paused });
    expect(fine['Stalled']).toBeUndefined();
    expect(fine['Ready']).toMatchObject({ status: 'True' });
  });

  it('Stalled keeps its lastTransitionTime while it holds', () => {
    const stalled: Partial<NodeStatusInput> = {
      progress: { status: 'False', reason: 'Stalled', message: 'm' },
      degraded: { reason: 'ImageNotFound', message: 'no image' },
    };
    const summary = plan(input({ desired: desired({ replicas: 3 }), observed: [] })).summary;
    const base = { node: 'n', generation: 1, summary, restoringNow: 0, paused: false, progress: stalled.progress!, degraded: stalled.degraded };
    const first = computeNodeStatus({ ...base, now: NOW });
    const later = computeNodeStatus({ ...base, previous: first, now: new Date('2030-01-01T01:00:00Z') });
    expect(later.conditions!.find((c) => c.type === 'Stalled')!.lastTransitionTime).toBe('2030-01-01T00:00:00Z');
  });
});
