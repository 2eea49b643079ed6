// The CheckpointReplicaSet API as ONE OpenAPI v3 structural schema: the single source of truth.
//
// hack/gen/main.ts turns this object into
//   - crds/checkpoint.dev_checkpointreplicasets.yaml (the CRD, via hack/gen/crd.ts), and
//   - controller/api/types.ts (the TypeScript types, via hack/gen/typegen.ts);
// test/unit/api/generated.test.ts fails when either committed file differs from what this generates.
//
// Keys starting with `x-ts-` steer the TypeScript generator only and are stripped from the CRD:
//   x-ts-name      emit this node as a named, exported type (interface, or alias for an enum);
//   x-ts-type      use this TypeScript type text verbatim instead of deriving one;
//   x-ts-required  the property is always present in TypeScript even though the CRD does not require it;
//   x-ts-optional  the property stays optional in TypeScript although it has a schema default;
//   x-ts-omit      the property exists in the CRD only to be rejected with a clear message.
// Every other property is required in TypeScript when the schema requires it or defaults it (the
// apiserver fills defaults before it stores the object, so the controller always sees them).
//
// CEL messages name the field in full (`spec.restore.maxConcurrent ...`) because kubectl prints the
// message as is, and a person reading it should not have to know where the rule sits.

export const GROUP = 'checkpoint.dev';
export const VERSION = 'v1alpha1';
export const API_VERSION = `${GROUP}/${VERSION}`;
export const KIND = 'CheckpointReplicaSet';
export const LIST_KIND = 'CheckpointReplicaSetList';
export const PLURAL = 'checkpointreplicasets';
export const SINGULAR = 'checkpointreplicaset';
export const SHORT_NAMES = ['crs'];
export const CRD_NAME = `${PLURAL}.${GROUP}`;
/** Every node's finalizer starts with this; the node name (or its hashed form) follows (kube/finalizers.ts). */
export const NODE_FINALIZER_PREFIX = `${GROUP}/cleanup-`;

/**
 * The most restores in flight at once, per resource and per Docker host: containerd starts at most
 * 10 containers at a time (more time out, moby 29369). The one cap the CRD, the planner and the engine share.
 */
export const MAX_CONCURRENT_RESTORES = 10;

/**
 * The condition types, in the order they are written. Ready, Reconciling and Stalled follow kstatus
 * (sigs.k8s.io/cli-utils, read by Flux and kubectl-based tools): Reconciling and Stalled are present
 * only while they hold. Progressing and Degraded are kept for kubectl users who know them from Deployments.
 */
export const CONDITION_TYPES = ['Ready', 'Reconciling', 'Stalled', 'Progressing', 'Degraded'] as const;

/** How a CEL rule's failure is reported; mirrors apiextensions.k8s.io/v1 ValidationRule. */
interface ValidationRule {
  rule: string;
  message: string;
  fieldPath?: string;
  reason?: 'FieldValueInvalid' | 'FieldValueForbidden' | 'FieldValueRequired' | 'FieldValueDuplicate';
}

/** The subset of apiextensions.k8s.io/v1 JSONSchemaProps this API uses, plus the x-ts-* keys above. */
export interface SchemaNode {
  type?: 'object' | 'array' | 'string' | 'integer' | 'number' | 'boolean';
  format?: string;
  description?: string;
  properties?: Record<string, SchemaNode>;
  additionalProperties?: SchemaNode;
  items?: SchemaNode;
  required?: string[];
  enum?: string[];
  default?: unknown;
  minimum?: number;
  maximum?: number;
  minLength?: number;
  maxLength?: number;
  minItems?: number;
  maxItems?: number;
  maxProperties?: number;
  pattern?: string;
  'x-kubernetes-validations'?: ValidationRule[];
  'x-kubernetes-list-type'?: 'atomic' | 'set' | 'map';
  'x-kubernetes-list-map-keys'?: string[];
  'x-kubernetes-map-type'?: 'atomic' | 'granular';
  'x-kubernetes-preserve-unknown-fields'?: boolean;
  'x-ts-name'?: string;
  'x-ts-type'?: string;
  'x-ts-required'?: boolean;
  'x-ts-optional'?: boolean;
  'x-ts-omit'?: boolean;
}

// ---- building blocks -------------------------------------------------------------------------

/** A Kubernetes label key: optional DNS-subdomain prefix and `/`, then a name of at most 63 characters. */
const LABEL_KEY_PATTERN = '^([a-z0-9]([-a-z0-9]*[a-z0-9])?(\\\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*/)?[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?$';
/** A Kubernetes label value: empty, or alphanumeric at both ends with -_. between (length is capped by maxLength). */
const LABEL_VALUE_PATTERN = '^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$';

/** A rule that a path is absolute and has no `..` segment (a replica must not escape a root). */
function absolutePathRules(field: string): ValidationRule[] {
  return [
    { rule: "self.startsWith('/')", message: `${field} must be an absolute path (start with /)` },
    {
      rule: "!self.matches('(^|/)\\\\.\\\\.(/|$)')",
      message: `${field} must not contain '..' segments`,
    },
  ];
}

/** A Kubernetes quantity such as 512Mi or 500m, greater than zero. */
function positiveQuantity(field: string, description: string, example: string): SchemaNode {
  return {
    type: 'string',
    description,
    maxLength: 64,
    'x-kubernetes-validations': [
      {
        rule: 'isQuantity(self)',
        message: `${field} must be a Kubernetes quantity such as ${example}`,
      },
      {
        rule: "!isQuantity(self) || quantity(self).isGreaterThan(quantity('0'))",
        message: `${field} must be greater than zero`,
      },
    ],
  };
}

/** A whole number in [min, max] with a message naming the field (kubectl prints it as is). */
function intRange(field: string, min: number, max: number, description: string, defaultValue?: number): SchemaNode {
  return {
    type: 'integer',
    format: 'int32',
    ...(defaultValue === undefined ? {} : { default: defaultValue }),
    description,
    'x-kubernetes-validations': [{ rule: `self >= ${min} && self <= ${max}`, message: `${field} must be between ${min} and ${max}` }],
  };
}

/** A command run inside the replica (docker exec), Kubernetes' ExecAction. */
function execAction(field: string): SchemaNode {
  return {
    type: 'object',
    required: ['command'],
    description: 'A command run inside the replica with docker exec; exit code 0 is success.',
    properties: {
      command: {
        type: 'array',
        minItems: 1,
        maxItems: 64,
        items: { type: 'string', maxLength: 4096 },
        description: 'The program and its arguments (no shell unless you name one).',
        'x-kubernetes-validations': [{ rule: 'self.size() >= 1 && self[0] != ""', message: `${field}.command must name a program: its first item is empty` }],
      },
    },
  };
}

/** The serving part of the template: ports, the readiness probe, the after-restore hook. */
const servingProperties: Record<string, SchemaNode> = {
  ports: {
    type: 'array',
    maxItems: 64,
    'x-kubernetes-list-type': 'map',
    'x-kubernetes-list-map-keys': ['containerPort', 'protocol'],
    description: "Container ports to publish: each replica gets its own host port from Docker's ephemeral range (the EndpointSlice and docker port show it).",
    items: {
      type: 'object',
      'x-ts-name': 'ContainerPort',
      required: ['containerPort'],
      properties: {
        name: {
          type: 'string',
          maxLength: 15,
          description: 'An IANA service name, copied into the EndpointSlice.',
          'x-kubernetes-validations': [
            {
              rule: "self.matches('^[a-z0-9]([-a-z0-9]*[a-z0-9])?$') && self.matches('[a-z]')",
              message: 'spec.template.ports[].name must be an IANA service name: lower-case letters, digits and -, at most 15, with a letter',
            },
          ],
        },
        containerPort: intRange('spec.template.ports[].containerPort', 1, 65535, 'The port the process listens on inside the container.'),
        protocol: { type: 'string', enum: ['TCP', 'UDP'], default: 'TCP', 'x-ts-name': 'PortProtocol', description: 'TCP or UDP. Default TCP.' },
      },
    },
  },
  readinessProbe: {
    type: 'object',
    'x-ts-name': 'ReadinessProbe',
    description:
      'Run by the agent after each start: a replica is Ready only once it passes; one that does not pass within initialDelaySeconds + failureThreshold x periodSeconds is a failed restore (ReadinessTimeout).',
    properties: {
      exec: execAction('spec.template.readinessProbe.exec'),
      httpGet: {
        type: 'object',
        'x-ts-name': 'HTTPGetAction',
        required: ['port'],
        description: "GET from the agent to the replica's host port; a status 200-399 is success.",
        properties: {
          path: {
            type: 'string',
            maxLength: 2048,
            default: '/',
            description: 'Default /.',
            'x-kubernetes-validations': [{ rule: "self.startsWith('/')", message: 'spec.template.readinessProbe.httpGet.path must start with /' }],
          },
          port: intRange('spec.template.readinessProbe.httpGet.port', 1, 65535, 'A containerPort listed in spec.template.ports (TCP).'),
        },
      },
      initialDelaySeconds: intRange('spec.template.readinessProbe.initialDelaySeconds', 0, 3600, 'Wait before the first probe. Default 0.', 0),
      periodSeconds: intRange('spec.template.readinessProbe.periodSeconds', 1, 3600, 'Between probes. Default 10.', 10),
      timeoutSeconds: intRange('spec.template.readinessProbe.timeoutSeconds', 1, 3600, 'For one probe. Default 1.', 1),
      successThreshold: intRange('spec.template.readinessProbe.successThreshold', 1, 100, 'Passes in a row that make it Ready. Default 1.', 1),
      failureThreshold: intRange(
        'spec.template.readinessProbe.failureThreshold',
        1,
        100,
        'Failures in a row (after the initial delay) that fail the restore. Default 3.',
        3,
      ),
    },
    'x-kubernetes-validations': [
      {
        rule: 'has(self.exec) != has(self.httpGet)',
        message: 'spec.template.readinessProbe must set exactly one of exec or httpGet',
      },
    ],
  },
  postRestore: {
    type: 'object',
    'x-ts-name': 'PostRestoreHook',
    required: ['exec'],
    description:
      'A command run in each replica right after its restore and before it counts as Ready (not after a cold start): give each clone its own identity. A non-zero exit or a timeout fails the restore (PostRestoreFailed).',
    properties: {
      exec: execAction('spec.template.postRestore.exec'),
      timeoutSeconds: intRange('spec.template.postRestore.timeoutSeconds', 1, 3600, 'Bound on the command. Default 30.', 30),
    },
  },
};

/** The template-level rule tying an httpGet probe to a declared port. */
const probePortRule: ValidationRule = {
  rule: '!has(self.readinessProbe) || !has(self.readinessProbe.httpGet) || (has(self.ports) && self.ports.exists(p, p.containerPort == self.readinessProbe.httpGet.port && (!has(p.protocol) || p.protocol == "TCP")))',
  message: 'spec.template.readinessProbe.httpGet.port must be a TCP containerPort listed in spec.template.ports (the agent probes its host port)',
  fieldPath: '.readinessProbe.httpGet.port',
  reason: 'FieldValueInvalid',
};

/** A field that exists only so that setting it is rejected with a reason, not "unknown field". */
function rejected(field: string, node: SchemaNode, why: string): { node: SchemaNode; rule: ValidationRule } {
  const name = field.slice(field.lastIndexOf('.') + 1);
  const isBoolean = node.type === 'boolean';
  return {
    node: { ...node, description: `Not supported in v1alpha1: ${why}`, 'x-ts-omit': true },
    rule: {
      // `false` asks for nothing unsafe, so it is accepted (a copied Pod spec often says it).
      rule: isBoolean ? `!has(self.${name}) || !self.${name}` : `!has(self.${name})`,
      message: `${field} is not supported in v1alpha1: ${why}`,
      fieldPath: `.${name}`,
      reason: 'FieldValueForbidden',
    },
  };
}

const unsafe = {
  privileged: rejected('spec.template.privileged', { type: 'boolean' }, 'replicas never run privileged'),
  hostNetwork: rejected('spec.template.hostNetwork', { type: 'boolean' }, "replicas never share the host's network namespace"),
  hostPID: rejected('spec.template.hostPID', { type: 'boolean' }, "replicas never share the host's PID namespace"),
  capabilities: rejected(
    'spec.template.capabilities',
    { type: 'object', 'x-kubernetes-preserve-unknown-fields': true },
    "replicas run with Docker's default capabilities; none can be added",
  ),
  volumes: rejected(
    'spec.template.volumes',
    { type: 'array', items: { type: 'object', 'x-kubernetes-preserve-unknown-fields': true } },
    'replicas mount nothing from the host',
  ),
};

const condition: SchemaNode = {
  type: 'object',
  'x-ts-name': 'Condition',
  description: 'One aspect of the state, in the shape of metav1.Condition.',
  required: ['type', 'status', 'reason', 'message', 'lastTransitionTime'],
  properties: {
    type: {
      type: 'string',
      'x-ts-name': 'ConditionType',
      enum: [...CONDITION_TYPES],
      description:
        'Ready: every selected node runs all its replicas. Reconciling (present only while True): the agents are working towards the spec. ' +
        'Stalled (present only while True): nothing will change without a change of spec or host (missing checkpoint, attempts spent, paused). ' +
        'Progressing: like Reconciling, always present. Degraded: a permanent failure on some node.',
    },
    status: {
      type: 'string',
      'x-ts-name': 'ConditionStatus',
      enum: ['True', 'False', 'Unknown'],
      description: 'True, False or Unknown.',
    },
    reason: {
      type: 'string',
      minLength: 1,
      maxLength: 1024,
      description: 'A CamelCase word a program can branch on.',
    },
    message: { type: 'string', maxLength: 32768, description: 'What a person should know, in words.' },
    lastTransitionTime: {
      type: 'string',
      format: 'date-time',
      description: 'When status last changed (not when reason or message changed).',
    },
    observedGeneration: {
      type: 'integer',
      format: 'int64',
      minimum: 0,
      description: 'The metadata.generation this condition describes.',
    },
  },
};

const conditionList: SchemaNode = {
  type: 'array',
  items: condition,
  maxItems: 16,
  'x-kubernetes-list-type': 'map',
  'x-kubernetes-list-map-keys': ['type'],
};

function replicaCount(description: string): SchemaNode {
  return { type: 'integer', format: 'int32', minimum: 0, default: 0, description };
}

// ---- the resource ----------------------------------------------------------------------------

export const checkpointReplicaSetSchema: SchemaNode = {
  type: 'object',
  'x-ts-name': 'CheckpointReplicaSet',
  description: 'CheckpointReplicaSet runs, on each selected Docker host, a number of containers restored from one CRIU checkpoint.',
  required: ['spec'],
  properties: {
    apiVersion: {
      type: 'string',
      'x-ts-type': 'typeof API_VERSION',
      'x-ts-required': true,
      description: `The versioned schema of this representation of an object: ${API_VERSION}.`,
    },
    kind: {
      type: 'string',
      'x-ts-type': 'typeof KIND',
      'x-ts-required': true,
      description: `The REST resource this object represents: ${KIND}.`,
    },
    // No description: the apiserver refuses anything but name/generateName rules here and
    // publishes ObjectMeta's own description for it.
    metadata: { type: 'object', 'x-ts-type': 'ObjectMeta', 'x-ts-required': true },
    spec: {
      type: 'object',
      'x-ts-name': 'CheckpointReplicaSetSpec',
      description: 'What should run on each selected node.',
      required: ['checkpoint', 'template'],
      properties: {
        replicas: {
          type: 'integer',
          format: 'int32',
          // minimum, not CEL: the scale subresource already rejects a negative value in its own words.
          minimum: 0,
          default: 1,
          description: 'Replicas on EACH node the resource selects. Default 1.',
        },
        checkpoint: {
          type: 'object',
          'x-ts-name': 'CheckpointSource',
          description: 'Exactly one of `container` (with `name`), `path` or `bootstrap` is set (the schema enforces it).',
          properties: {
            container: {
              type: 'string',
              maxLength: 128,
              description: 'Name or id of a container on the node that holds the checkpoint.',
              'x-kubernetes-validations': [
                {
                  rule: "self.matches('^[a-zA-Z0-9][a-zA-Z0-9_.-]*$')",
                  message: 'spec.checkpoint.container must be a Docker container name or id ([a-zA-Z0-9][a-zA-Z0-9_.-]*)',
                },
              ],
            },
            name: {
              type: 'string',
              maxLength: 128,
              description: "The checkpoint's name on that container.",
              'x-kubernetes-validations': [
                {
                  rule: "self.matches('^[a-zA-Z0-9][a-zA-Z0-9_.-]*$')",
                  message: 'spec.checkpoint.name must be a Docker checkpoint name ([a-zA-Z0-9][a-zA-Z0-9_.-]*)',
                },
              ],
            },
            path: {
              type: 'string',
              maxLength: 4096,
              description: "Absolute host directory holding CRIU image files (under the agent's checkpoint root).",
              'x-kubernetes-validations': absolutePathRules('spec.checkpoint.path'),
            },
            bootstrap: {
              type: 'object',
              'x-ts-name': 'BootstrapSource',
              description:
                'Or: each node makes the checkpoint itself. When the node has none for the current template, the agent starts one replica cold, waits for its readinessProbe and then warmupSeconds, checkpoints it without stopping it (it stays one of the replicas) into a folder only the agent writes, and restores the others from it. Reclaimed when the template changes or the resource is deleted.',
              properties: {
                warmupSeconds: intRange(
                  'spec.checkpoint.bootstrap.warmupSeconds',
                  0,
                  3600,
                  'Seconds to wait after the readiness probe passes (or, without one, after the start) before the checkpoint. Default 0.',
                  0,
                ),
                timeoutSeconds: intRange(
                  'spec.checkpoint.bootstrap.timeoutSeconds',
                  1,
                  86400,
                  'Bound on the cold start until the replica is ready (BootstrapFailed past it); the warm-up and the checkpoint come on top. Default 300.',
                  300,
                ),
              },
            },
          },
          'x-kubernetes-validations': [
            {
              rule: 'has(self.container) || has(self.path) || has(self.bootstrap)',
              message: 'spec.checkpoint must name a source: container and name, path, or bootstrap',
              reason: 'FieldValueRequired',
            },
            {
              rule: '!(has(self.bootstrap) && (has(self.container) || has(self.name) || has(self.path)))',
              message: 'spec.checkpoint.bootstrap excludes container, name and path: name exactly one source',
              fieldPath: '.bootstrap',
              reason: 'FieldValueForbidden',
            },
            {
              rule: '!(has(self.path) && (has(self.container) || has(self.name)))',
              message: 'spec.checkpoint must name exactly one source: either container and name, or path, not both',
              fieldPath: '.path',
              reason: 'FieldValueForbidden',
            },
            {
              rule: '!has(self.container) || has(self.name)',
              message: 'spec.checkpoint.name is required with spec.checkpoint.container (the checkpoint to restore)',
              fieldPath: '.name',
              reason: 'FieldValueRequired',
            },
          ],
        },
        template: {
          type: 'object',
          'x-ts-name': 'ContainerTemplate',
          description:
            'The container to create for each replica. Only what is safe: no privileged mode, host mounts, host network or PID namespace, or added capabilities.',
          required: ['image'],
          properties: {
            image: {
              type: 'string',
              maxLength: 512,
              description: 'The image of the checkpointed container (a restore needs the same root filesystem).',
              'x-kubernetes-validations': [
                {
                  rule: "self.matches('^[^\\\\s]+$')",
                  message: 'spec.template.image must be a non-empty image reference without spaces',
                },
              ],
            },
            command: { type: 'array', items: { type: 'string' }, description: "Overrides the image's entrypoint." },
            args: { type: 'array', items: { type: 'string' }, description: "Overrides the image's command." },
            env: {
              type: 'array',
              maxItems: 1024,
              'x-kubernetes-list-type': 'map',
              'x-kubernetes-list-map-keys': ['name'],
              description: 'Environment variables, each name once.',
              items: {
                type: 'object',
                'x-ts-name': 'EnvVar',
                required: ['name'],
                properties: {
                  name: {
                    type: 'string',
                    maxLength: 256,
                    description: 'The variable name: a C identifier.',
                    'x-kubernetes-validations': [
                      {
                        rule: "self.matches('^[A-Za-z_][A-Za-z0-9_]*$')",
                        message: 'spec.template.env[].name must be a C identifier: letters, digits and _, not starting with a digit',
                      },
                    ],
                  },
                  value: { type: 'string', description: 'The value; empty when absent.' },
                },
              },
            },
            stopGracePeriodSeconds: {
              type: 'integer',
              minimum: 0,
              maximum: 3600,
              description:
                "Seconds a replica gets between SIGTERM and SIGKILL when it is removed (Docker's stop timeout; default 10, Docker's). Like a Pod's terminationGracePeriodSeconds: part of the template, so a change rolls the replicas.",
            },
            workingDir: {
              type: 'string',
              maxLength: 4096,
              description: 'Absolute directory the process starts in.',
              'x-kubernetes-validations': absolutePathRules('spec.template.workingDir'),
            },
            user: {
              type: 'string',
              maxLength: 256,
              description: 'user, uid, user:group or uid:gid.',
              'x-kubernetes-validations': [
                {
                  rule: "self.matches('^[A-Za-z0-9_][A-Za-z0-9_.-]*(:[A-Za-z0-9_][A-Za-z0-9_.-]*)?$')",
                  message: 'spec.template.user must be user, uid, user:group or uid:gid',
                },
              ],
            },
            labels: {
              type: 'object',
              maxProperties: 256,
              additionalProperties: { type: 'string' },
              description: "Docker labels added to each replica. Keys under checkpoint.dev/ are the controller's own.",
              'x-kubernetes-validations': [
                {
                  rule: "self.all(k, !k.startsWith('checkpoint.dev/'))",
                  message: 'spec.template.labels must not use the prefix checkpoint.dev/: the controller sets those labels to track ownership',
                },
              ],
            },
            resources: {
              type: 'object',
              description: 'Limits applied to each replica.',
              properties: {
                limits: {
                  type: 'object',
                  'x-ts-name': 'ResourceLimits',
                  description: 'Upper bounds Docker enforces on each replica container.',
                  properties: {
                    memory: positiveQuantity('spec.template.resources.limits.memory', 'Kubernetes quantity, e.g. "512Mi".', '512Mi'),
                    cpu: positiveQuantity('spec.template.resources.limits.cpu', 'Kubernetes quantity, e.g. "500m" or "2".', '500m'),
                  },
                },
              },
            },
            ...servingProperties,
            privileged: unsafe.privileged.node,
            hostNetwork: unsafe.hostNetwork.node,
            hostPID: unsafe.hostPID.node,
            capabilities: unsafe.capabilities.node,
            volumes: unsafe.volumes.node,
          },
          'x-kubernetes-validations': [...Object.values(unsafe).map((u) => u.rule), probePortRule],
        },
        nodeSelector: {
          type: 'object',
          maxProperties: 64,
          additionalProperties: { type: 'string', maxLength: 63 },
          description: 'Labels of the nodes whose agents run replicas; empty means every agent.',
          // A malformed key or value can never match a node's label: refuse it rather than select nothing.
          'x-kubernetes-validations': [
            {
              rule: `self.all(k, k.matches('${LABEL_KEY_PATTERN}'))`,
              message: 'spec.nodeSelector keys must be Kubernetes label keys such as kubernetes.io/hostname or disk',
            },
            {
              rule: `self.all(k, self[k].matches('${LABEL_VALUE_PATTERN}'))`,
              message: 'spec.nodeSelector values must be Kubernetes label values: at most 63 of [A-Za-z0-9-_.], alphanumeric at both ends',
            },
          ],
        },
        restore: {
          type: 'object',
          'x-ts-name': 'RestorePolicy',
          default: {},
          description: 'Defaults are filled by the apiserver (schema defaults), so these are always present once stored.',
          properties: {
            maxConcurrent: {
              type: 'integer',
              format: 'int32',
              default: MAX_CONCURRENT_RESTORES,
              description: 'Restores in flight at once on one node for this resource, 1..10. Default 10.',
              'x-kubernetes-validations': [
                {
                  rule: `self >= 1 && self <= ${MAX_CONCURRENT_RESTORES}`,
                  message: `spec.restore.maxConcurrent must be between 1 and ${MAX_CONCURRENT_RESTORES}: Docker's containerd starts at most ${MAX_CONCURRENT_RESTORES} containers at a time`,
                },
              ],
            },
            timeoutSeconds: {
              type: 'integer',
              format: 'int32',
              default: 120,
              description: 'Per-restore timeout. Default 120.',
              'x-kubernetes-validations': [
                {
                  // A day is far beyond any restore, and keeps the timer below Node's 2^31 ms limit.
                  rule: 'self >= 1 && self <= 86400',
                  message: 'spec.restore.timeoutSeconds must be between 1 and 86400 (a day)',
                },
              ],
            },
            maxAttempts: {
              type: 'integer',
              format: 'int32',
              default: 5,
              description: 'Attempts per replica before it counts as failed. Default 5.',
              'x-kubernetes-validations': [{ rule: 'self >= 1 && self <= 100', message: 'spec.restore.maxAttempts must be between 1 and 100' }],
            },
            fallback: {
              type: 'string',
              'x-ts-name': 'RestoreFallback',
              enum: ['None', 'ColdStart'],
              default: 'None',
              description: 'What to do once the attempts are spent. Default None.',
            },
          },
        },
        serviceName: {
          type: 'string',
          maxLength: 63,
          description:
            "A selector-less Service in the resource's namespace that routes to the Ready replicas: each node's EndpointSlice carries kubernetes.io/service-name with this value.",
          'x-kubernetes-validations': [
            {
              rule: "self.matches('^[a-z]([-a-z0-9]*[a-z0-9])?$')",
              message: 'spec.serviceName must be a Service name: lower-case letters, digits and -, starting with a letter, at most 63',
            },
          ],
        },
        paused: {
          type: 'boolean',
          default: false,
          'x-ts-optional': true,
          description: 'Stop acting, keep what runs.',
        },
      },
    },
    status: {
      type: 'object',
      'x-ts-name': 'CheckpointReplicaSetStatus',
      description: 'Written only by the controller, through the status subresource.',
      // A new object reads `observedGeneration: 0` before any agent has written (the apiserver
      // applies the default when it reads the object), so kstatus, Flux and Argo CD see "generation
      // not observed yet" instead of an empty status they would take for done.
      default: {},
      'x-ts-optional': true,
      properties: {
        observedGeneration: {
          type: 'integer',
          format: 'int64',
          minimum: 0,
          default: 0,
          'x-ts-optional': true,
          description: 'The metadata.generation every reporting node has acted on (the smallest); 0 until a node has reported.',
        },
        replicas: { type: 'integer', format: 'int32', minimum: 0, description: 'Replicas that exist, summed over the nodes.' },
        readyReplicas: { type: 'integer', format: 'int32', minimum: 0, description: 'Replicas running, summed over the nodes.' },
        restoringReplicas: {
          type: 'integer',
          format: 'int32',
          minimum: 0,
          description: 'Replicas being restored right now, summed over the nodes.',
        },
        failedReplicas: {
          type: 'integer',
          format: 'int32',
          minimum: 0,
          description: 'Replicas that spent their attempts, summed over the nodes.',
        },
        conditions: { ...conditionList, description: 'Ready, Reconciling, Stalled, Progressing and Degraded over all nodes.' },
        nodeCount: {
          type: 'integer',
          format: 'int32',
          minimum: 0,
          description: 'How many nodes report on this resource (the entries of nodes); the NODES column of kubectl get crs -o wide.',
        },
        nodes: {
          type: 'array',
          description: 'One entry per node whose agent acts on this resource, each written by that agent only.',
          'x-kubernetes-list-type': 'map',
          'x-kubernetes-list-map-keys': ['node'],
          items: {
            type: 'object',
            'x-ts-name': 'NodeStatus',
            description: "One node's part of the status; a list-map keyed by `node` so agents never clobber each other.",
            required: ['node'],
            properties: {
              node: { type: 'string', minLength: 1, maxLength: 253, description: 'The Node this entry is about.' },
              observedGeneration: {
                type: 'integer',
                format: 'int64',
                minimum: 0,
                description: "The metadata.generation this node's agent last acted on.",
              },
              replicas: replicaCount('Replicas that exist on this node.'),
              readyReplicas: replicaCount('Replicas running on this node.'),
              restoringReplicas: replicaCount('Replicas being restored on this node.'),
              failedReplicas: replicaCount('Replicas that spent their attempts on this node.'),
              coldStartedReplicas: {
                type: 'integer',
                format: 'int32',
                minimum: 0,
                description: 'Ready replicas that run a cold start (fallback), not a restore.',
              },
              conditions: { ...conditionList, description: "This node's Ready, Reconciling, Stalled, Progressing and Degraded." },
              bootstrap: {
                type: 'object',
                'x-ts-name': 'NodeBootstrapStatus',
                description: "This node's own checkpoint (spec.checkpoint.bootstrap only).",
                required: ['phase'],
                properties: {
                  phase: {
                    type: 'string',
                    'x-ts-name': 'BootstrapPhase',
                    enum: ['Bootstrapping', 'Ready', 'Failed'],
                    description:
                      'Bootstrapping: a replica is warming up to be checkpointed. Ready: the checkpoint exists. Failed: see message (reason BootstrapFailed).',
                  },
                  templateHash: { type: 'string', maxLength: 64, description: 'The template hash the checkpoint is (being) made for.' },
                  checkpointCreated: { type: 'string', format: 'date-time', description: 'When the checkpoint was made (its age).' },
                  checkpointSizeBytes: { type: 'integer', format: 'int64', minimum: 0, description: 'Bytes of the checkpoint on disk.' },
                  message: { type: 'string', maxLength: 4096, description: "What happened, with the engine's or CRIU's message on failure." },
                },
              },
              lastUpdateTime: { type: 'string', format: 'date-time', description: 'When this entry last changed.' },
            },
          },
        },
        selector: { type: 'string', description: 'Label selector string for the scale subresource.' },
      },
    },
  },
};
