// The generated types keep the shapes of the lead's draft contract (controller/api/types.ts before
// generation), which the rest of the controller was written against. Checked by the type checker:
// `npx tsc -p tsconfig.json --noEmit` fails when a generated type drifts from the draft below.
import { describe, expect, expectTypeOf, it } from 'vitest';
import type * as Api from '../../../controller/api/types.js';
import { API_VERSION, GROUP, KIND, NODE_FINALIZER_PREFIX, PLURAL, VERSION } from '../../../controller/api/types.js';

interface DraftCheckpointSource {
  container?: string;
  name?: string;
  path?: string;
  bootstrap?: { warmupSeconds: number; timeoutSeconds: number };
}
interface DraftEnvVar {
  name: string;
  value?: string;
}
interface DraftResourceLimits {
  memory?: string;
  cpu?: string;
}
interface DraftContainerTemplate {
  image: string;
  command?: string[];
  args?: string[];
  env?: DraftEnvVar[];
  workingDir?: string;
  user?: string;
  labels?: Record<string, string>;
  resources?: { limits?: DraftResourceLimits };
  ports?: Api.ContainerPort[];
  readinessProbe?: Api.ReadinessProbe;
  postRestore?: Api.PostRestoreHook;
  stopGracePeriodSeconds?: number;
}
type DraftRestoreFallback = 'None' | 'ColdStart';
interface DraftRestorePolicy {
  maxConcurrent: number;
  timeoutSeconds: number;
  maxAttempts: number;
  fallback: DraftRestoreFallback;
}
interface DraftSpec {
  replicas: number;
  checkpoint: DraftCheckpointSource;
  template: DraftContainerTemplate;
  nodeSelector?: Record<string, string>;
  restore: DraftRestorePolicy;
  serviceName?: string;
  paused?: boolean;
}
type DraftConditionType = 'Ready' | 'Reconciling' | 'Stalled' | 'Progressing' | 'Degraded';
type DraftConditionStatus = 'True' | 'False' | 'Unknown';
interface DraftCondition {
  type: DraftConditionType;
  status: DraftConditionStatus;
  reason: string;
  message: string;
  lastTransitionTime: string;
  observedGeneration?: number;
}
interface DraftNodeStatus {
  node: string;
  observedGeneration?: number;
  replicas: number;
  readyReplicas: number;
  restoringReplicas: number;
  failedReplicas: number;
  coldStartedReplicas?: number;
  conditions?: DraftCondition[];
  bootstrap?: {
    phase: 'Bootstrapping' | 'Ready' | 'Failed';
    templateHash?: string;
    checkpointCreated?: string;
    checkpointSizeBytes?: number;
    message?: string;
  };
  lastUpdateTime?: string;
}
interface DraftStatus {
  observedGeneration?: number;
  replicas?: number;
  readyReplicas?: number;
  restoringReplicas?: number;
  failedReplicas?: number;
  conditions?: DraftCondition[];
  nodeCount?: number;
  nodes?: DraftNodeStatus[];
  selector?: string;
}

describe('generated types keep the draft contract', () => {
  it('has the same shapes (enforced by tsc)', () => {
    expectTypeOf<Api.CheckpointSource>().toEqualTypeOf<DraftCheckpointSource>();
    expectTypeOf<Api.EnvVar>().toEqualTypeOf<DraftEnvVar>();
    expectTypeOf<Api.ResourceLimits>().toEqualTypeOf<DraftResourceLimits>();
    expectTypeOf<Api.ContainerTemplate>().toEqualTypeOf<DraftContainerTemplate>();
    expectTypeOf<Api.RestoreFallback>().toEqualTypeOf<DraftRestoreFallback>();
    expectTypeOf<Api.RestorePolicy>().toEqualTypeOf<DraftRestorePolicy>();
    expectTypeOf<Api.CheckpointReplicaSetSpec>().toEqualTypeOf<DraftSpec>();
    expectTypeOf<Api.ConditionType>().toEqualTypeOf<DraftConditionType>();
    expectTypeOf<Api.ConditionStatus>().toEqualTypeOf<DraftConditionStatus>();
    expectTypeOf<Api.Condition>().toEqualTypeOf<DraftCondition>();
    expectTypeOf<Api.NodeStatus>().toEqualTypeOf<DraftNodeStatus>();
    expectTypeOf<Api.CheckpointReplicaSetStatus>().toEqualTypeOf<DraftStatus>();
    expectTypeOf<Api.CheckpointReplicaSet['spec']>().toEqualTypeOf<DraftSpec>();
    expectTypeOf<Api.CheckpointReplicaSet['apiVersion']>().toEqualTypeOf<'checkpoint.dev/v1alpha1'>();
    expectTypeOf<Api.CheckpointReplicaSet['kind']>().toEqualTypeOf<'CheckpointReplicaSet'>();
  });

  it('keeps the API identity constants', () => {
    expect({ GROUP, VERSION, API_VERSION, KIND, PLURAL, NODE_FINALIZER_PREFIX }).toEqual({
      GROUP: 'checkpoint.dev',
      VERSION: 'v1alpha1',
      API_VERSION: 'checkpoint.dev/v1alpha1',
      KIND: 'CheckpointReplicaSet',
      PLURAL: 'checkpointreplicasets',
      NODE_FINALIZER_PREFIX: 'checkpoint.dev/cleanup-',
    });
  });
});
