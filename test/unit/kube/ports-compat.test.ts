// The kube classes ARE the reconciler's ports: this file fails to type-check if the shapes drift,
// and at run time drives one call through each port typed as the reconciler sees it.
import type { CoreV1Event } from '@kubernetes/client-node';
import { describe, expect, it } from 'vitest';
import type { EventsPort, FinalizerPort, StatusPort } from '../../../controller/reconcile/ports.js';
import { KubeEventRecorder } from '../../../controller/kube/events.js';
import { NodeFinalizer } from '../../../controller/kube/finalizers.js';
import { StatusWriter } from '../../../controller/kube/status-writer.js';
import { FakeCrsStore, sampleResource } from './fake-crs-store.js';

describe('kube layer as the reconciler ports', () => {
  it('StatusWriter, KubeEventRecorder and NodeFinalizer satisfy StatusPort, EventsPort and FinalizerPort', async () => {
    const store = new FakeCrsStore();
    store.put(sampleResource());
    const ref = { namespace: 'ns', name: 'web', uid: 'uid-web', generation: 1 };
    const created: CoreV1Event[] = [];
    const status: StatusPort = new StatusWriter({ client: store, node: 'n1', debounceMs: 0 });
    const events: EventsPort = new KubeEventRecorder({
      node: 'n1',
      sink: {
        create: async (_ns, e) => (created.push(e), e),
        patch: async () => ({}) as CoreV1Event,
      },
    });
    const finalizer: FinalizerPort = new NodeFinalizer({ client: store, node: 'n1' });

    await finalizer.ensure(ref);
    await status.report(ref, { node: 'n1', replicas: 1, readyReplicas: 1, restoringReplicas: 0, failedReplicas: 0 });
    events.record(ref, 'Normal', 'RestoresFinished', 'done');
    await (events as KubeEventRecorder).flush();
    await finalizer.release(ref);

    const stored = store.peek('ns', 'web');
    expect(stored?.status?.nodes?.[0]).toMatchObject({ node: 'n1', readyReplicas: 1 });
    expect(stored?.metadata.finalizers).toEqual([]);
    expect(created.map((e) => e.reason)).toEqual(['RestoresFinished']);
  });
});
