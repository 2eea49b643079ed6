// Inventory: which containers on this host are replicas, read from their labels. Ownership is the
// OWNER_UID label alone; the container name is never trusted.

import type Docker from 'dockerode';
import { ATTEMPT, OWNER_UID, REPLICA_ID, START_MODE, TEMPLATE_HASH, type StartMode } from '../api/labels.js';
import type { PublishedPort, Replica, ReplicaState } from './types.js';

const STATES: ReadonlySet<string> = new Set<ReplicaState>(['created', 'running', 'restarting', 'paused', 'exited', 'dead', 'removing']);

/** The Docker list filter for one owner, or for every owner when uid is undefined. */
export function ownerFilter(uid?: string): { label: string[] } {
  return { label: [uid === undefined ? OWNER_UID : `${OWNER_UID}=${uid}`] };
}

/**
 * A listed container as a Replica, or undefined when it carries no owner label (never ours).
 * A container with the owner label but damaged other labels is still returned (so it can be
 * removed), with an empty templateHash that never matches a current spec and ready false.
 */
export function replicaFromContainer(info: Docker.ContainerInfo): Replica | undefined {
  const labels = info.Labels ?? {};
  const ownerUid = labels[OWNER_UID];
  if (!ownerUid) return undefined;
  const attempt = Number(labels[ATTEMPT]);
  const modeLabel = labels[START_MODE];
  const startMode: StartMode = modeLabel === 'cold' || modeLabel === 'bootstrap' ? modeLabel : 'restore';
  const wellFormed =
    (modeLabel === 'restore' || modeLabel === 'cold' || modeLabel === 'bootstrap') && Number.isInteger(attempt) && attempt >= 1 && !!labels[REPLICA_ID];
  const state = (STATES.has(info.State) ? info.State : 'dead') as ReplicaState;
  return {
    containerId: info.Id,
    containerName: (info.Names?.[0] ?? '').replace(/^\//, ''),
    ownerUid,
    replicaId: labels[REPLICA_ID] ?? '',
    attempt: Number.isInteger(attempt) ? attempt : 0,
    templateHash: wellFormed ? (labels[TEMPLATE_HASH] ?? '') : '',
    startMode,
    state,
    // Replicas run with RestartPolicy "no": the engine is the only one that starts them, so a running
    // replica was started by the engine, from the checkpoint (restore) or without it (cold).
    ready: wellFormed && state === 'running',
    createdAt: new Date(info.Created * 1000),
    ...publishedPorts(info.Ports),
  };
}

/** Docker lists a published port once per host address family (0.0.0.0 and ::): one entry each. */
export function publishedPorts(list: Docker.Port[] | undefined): { ports?: PublishedPort[] } {
  const ports = new Map<string, PublishedPort>();
  for (const p of list ?? []) {
    if (!p.PublicPort) continue;
    const protocol = p.Type === 'udp' ? 'UDP' : 'TCP';
    ports.set(`${p.PrivatePort}/${protocol}`, { containerPort: p.PrivatePort, protocol, hostPort: p.PublicPort });
  }
  return ports.size > 0 ? { ports: [...ports.values()] } : {};
}
