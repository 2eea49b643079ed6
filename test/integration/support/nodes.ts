// The node engines hack/nodes-up.sh started (one real dockerd with CRIU per simulated node), as one
// Testbed each: the same apiserver, that node's own Docker socket, data root and containerd tmp. The
// agent, workload and event-stream helpers take a Testbed, so they work per node unchanged.
import { existsSync } from 'node:fs';
import path from 'node:path';
import type { Testbed } from '../testbed.js';
import { parseEnvFile } from './testbed-env.js';

export function nodeTestbeds(bed: Testbed): Testbed[] {
  const file = path.join(bed.repoRoot, '.local/nodes.env');
  if (!existsSync(file)) throw new Error(`${file} is missing: hack/testbed-up.sh runs hack/nodes-up.sh unless NODES=0`);
  const env = parseEnvFile(file);
  const count = Number(env.NODES ?? 0);
  return Array.from({ length: count }, (_, i) => {
    const get = (key: string): string => {
      const v = env[`NODE${i + 1}_${key}`];
      if (!v) throw new Error(`${file} has no NODE${i + 1}_${key}`);
      return v;
    };
    const socket = get('DOCKER_SOCKET');
    return { ...bed, dockerSocket: socket, dockerHost: `unix://${socket}`, dockerRoot: get('DOCKER_ROOT'), containerdTmp: get('CONTAINERD_TMP') };
  });
}
