// The CustomResourceDefinition, built from the schema in ./schema.ts (the single source of truth).
// Pure data, no YAML dependency, so the agent may use it at run time (e.g. to check the installed CRD);
// ./api-files.ts renders it to crds/checkpoint.dev_checkpointreplicasets.yaml.
import {
  CRD_NAME,
  GROUP,
  KIND,
  LIST_KIND,
  PLURAL,
  SHORT_NAMES,
  SINGULAR,
  VERSION,
  checkpointReplicaSetSchema,
  type SchemaNode,
} from '../../controller/api/schema.js';

/** The schema without the x-ts-* keys, which only steer the TypeScript generator. */
export function openApiSchema(node: SchemaNode = checkpointReplicaSetSchema): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(node)) {
    if (key.startsWith('x-ts-') || value === undefined) continue;
    if (key === 'properties') {
      out[key] = Object.fromEntries(Object.entries(value as Record<string, SchemaNode>).map(([name, child]) => [name, openApiSchema(child)]));
    } else if (key === 'items' || key === 'additionalProperties') {
      out[key] = openApiSchema(value as SchemaNode);
    } else {
      out[key] = value;
    }
  }
  return out;
}

const READY_REASON_JSONPATH = '.status.conditions[?(@.type=="Ready")].reason';

/** The extra columns of `kubectl get crs -o wide`: where it runs and what it restores. */
export const WIDE_COLUMNS = [
  // A count: a printer column shows only the first match of a list, never all the names.
  { name: 'Nodes', type: 'integer', jsonPath: '.status.nodeCount', description: 'Nodes whose agents report on it', priority: 1 },
  { name: 'Container', type: 'string', jsonPath: '.spec.checkpoint.container', description: 'The checkpoint source container', priority: 1 },
  { name: 'Checkpoint', type: 'string', jsonPath: '.spec.checkpoint.name', description: "The source container's checkpoint", priority: 1 },
  { name: 'Path', type: 'string', jsonPath: '.spec.checkpoint.path', description: 'Or: the host directory of CRIU image files', priority: 1 },
  { name: 'Image', type: 'string', jsonPath: '.spec.template.image', description: 'The image of every replica', priority: 1 },
];

export function buildCrd(): Record<string, unknown> {
  return {
    apiVersion: 'apiextensions.k8s.io/v1',
    kind: 'CustomResourceDefinition',
    metadata: {
      name: CRD_NAME,
      labels: { 'app.kubernetes.io/name': 'crs-controller', 'app.kubernetes.io/part-of': 'crs-controller' },
    },
    spec: {
      group: GROUP,
      names: { kind: KIND, listKind: LIST_KIND, plural: PLURAL, singular: SINGULAR, shortNames: SHORT_NAMES },
      scope: 'Namespaced',
      versions: [
        {
          name: VERSION,
          served: true,
          storage: true,
          schema: { openAPIV3Schema: openApiSchema() },
          subresources: {
            status: {},
            scale: {
              specReplicasPath: '.spec.replicas',
              statusReplicasPath: '.status.replicas',
              labelSelectorPath: '.status.selector',
            },
          },
          additionalPrinterColumns: [
            {
              name: 'Desired',
              type: 'integer',
              jsonPath: '.spec.replicas',
              description: 'Replicas wanted on each selected node',
            },
            {
              name: 'Ready',
              type: 'integer',
              jsonPath: '.status.readyReplicas',
              description: 'Replicas running, summed over the nodes',
            },
            {
              name: 'Restoring',
              type: 'integer',
              jsonPath: '.status.restoringReplicas',
              description: 'Replicas being restored, summed over the nodes',
            },
            {
              name: 'Failed',
              type: 'integer',
              jsonPath: '.status.failedReplicas',
              description: 'Replicas that spent their attempts, summed over the nodes',
            },
            {
              name: 'Reason',
              type: 'string',
              jsonPath: READY_REASON_JSONPATH,
              description: "The Ready condition's reason",
            },
            { name: 'Age', type: 'date', jsonPath: '.metadata.creationTimestamp' },
            // priority 1: shown by `kubectl get crs -o wide` only.
            ...WIDE_COLUMNS,
          ],
        },
      ],
    },
  };
}
