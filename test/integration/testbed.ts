import { inject } from 'vitest';

/** Where the integration tests reach the real test bed; filled by global-setup.ts. */
export interface Testbed {
  /** Admin kubeconfig of the local kube-apiserver. */
  kubeconfig: string;
  /** The kubectl built at the pinned Kubernetes version. */
  kubectl: string;
  /** e.g. unix:///run/crs-docker/docker.sock */
  dockerHost: string;
  dockerSocket: string;
  /** The engine's --data-root. */
  dockerRoot: string;
  /** containerd's XDG_RUNTIME_DIR, where it leaks ctrd-checkpoint* copies. */
  containerdTmp: string;
  /** The sample workload image (hack/workload). */
  sampleImage: string;
  repoRoot: string;
}

declare module 'vitest' {
  export interface ProvidedContext {
    testbed: Testbed;
  }
}

export function testbed(): Testbed {
  return inject('testbed');
}
