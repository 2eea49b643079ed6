import type Docker from 'dockerode';
import { describe, expect, it } from 'vitest';
import { ATTEMPT, OWNER_UID, REPLICA_ID, START_MODE, TEMPLATE_HASH } from '../../../controller/api/labels.js';
import { ownerFilter, replicaFromContainer } from '../../../controller/engine/inventory.js';

function info(labels: Record<string, string>, state = 'running'): Docker.ContainerInfo {
  return { Id: 'c'.repeat(64), Names: ['/crs-x'], Labels: labels, State: state, Created: 1_700_000_000 } as Docker.ContainerInfo;
}
const good = { [OWNER_UID]: 'u1', [REPLICA_ID]: 'r1', [ATTEMPT]: '3', [TEMPLATE_HASH]: 'h', [START_MODE]: 'restore' };

describe('replicaFromContainer', () => {
  it('reads a well-labelled running replica as ready', () => {
    expect(replicaFromContainer(info(good))).toEqual({
      containerId: 'c'.repeat(64),
      containerName: 'crs-x',
      ownerUid: 'u1',
      replicaId: 'r1',
      attempt: 3,
      templateHash: 'h',
      startMode: 'restore',
      state: 'running',
      ready: true,
      createdAt: new Date(1_700_000_000_000),
    });
  });
  it('a cold-started one is ready and says so; an exited or created one is not ready', () => {
    expect(replicaFromContainer(info({ ...good, [START_MODE]: 'cold' }))).toMatchObject({ startMode: 'cold', ready: true });
    expect(replicaFromContainer(info(good, 'exited'))?.ready).toBe(false);
    expect(replicaFromContainer(info(good, 'created'))?.ready).toBe(false);
  });
  it('never returns a container without the owner label, whatever its name', () => {
    expect(replicaFromContainer(info({ [REPLICA_ID]: 'r1' }))).toBeUndefined();
    expect(replicaFromContainer(info({}))).toBeUndefined();
  });
  it('returns an owned container with damaged labels as out of date and not ready (so it gets replaced)', () => {
    const r = replicaFromContainer(info({ [OWNER_UID]: 'u1', [ATTEMPT]: 'x', [TEMPLATE_HASH]: 'h' }));
    expect(r).toMatchObject({ ownerUid: 'u1', templateHash: '', ready: false, attempt: 0, replicaId: '' });
  });
});

describe('ownerFilter', () => {
  it('filters by the exact uid, or by the label key for all owners', () => {
    expect(ownerFilter('u1')).toEqual({ label: [`${OWNER_UID}=u1`] });
    expect(ownerFilter()).toEqual({ label: [OWNER_UID] });
  });
});
