// Reads live objects the way GitOps tools do, with the tools' own code: hack/gitops-check runs
// kstatus (sigs.k8s.io/cli-utils), Flux's kstatus fork (`wait: true`, `healthChecks`) and CEL
// evaluator (`healthCheckExprs`), and Argo CD's Lua health script in gopher-lua. hack/build-gitops-check.sh builds it once (cached) and prints its path.
import { execFile, execFileSync } from 'node:child_process';
import path from 'node:path';
import type { Testbed } from '../testbed.js';

interface Health {
  status: string;
  message: string;
}

export interface GitopsCheck {
  readonly binary: string;
  /** kstatus's Compute: Current, InProgress, Failed, Terminating, ... */
  kstatus(object: unknown): Promise<Health>;
  /** Flux's kstatus (github.com/fluxcd/cli-utils), what `wait: true` reads. */
  fluxKstatus(object: unknown): Promise<Health>;
  /** Flux's CEL evaluator with manifests/flux/kustomization-cel.yaml's healthCheckExprs. */
  fluxCel(object: unknown): Promise<Health>;
  /** manifests/argocd/.../health.lua: Healthy, Progressing, Degraded, Suspended, ... */
  argocd(object: unknown): Promise<Health>;
  /** `argocd-test DIR`: runs DIR/health_test.yaml; resolves with its output, rejects on a mismatch. */
  argocdTest(dir: string): Promise<string>;
}

export const ARGOCD_HEALTH_DIR = 'manifests/argocd/checkpoint.dev/CheckpointReplicaSet';

export function gitopsCheck(bed: Testbed): GitopsCheck {
  // Instant when cached; hack/testbed-up.sh has built it already on a fresh machine.
  const binary = execFileSync('bash', [path.join(bed.repoRoot, 'hack/build-gitops-check.sh')], {
    encoding: 'utf8',
    stdio: ['ignore', 'pipe', 'inherit'],
  }).trim();
  const run = (args: string[], stdin?: string): Promise<string> =>
    new Promise((resolve, reject) => {
      const child = execFile(binary, args, { timeout: 30_000 }, (err, stdout, stderr) =>
        err ? reject(new Error(`gitops-check ${args.join(' ')} failed: ${stderr.trim() || err.message}\n${stdout}`)) : resolve(stdout),
      );
      child.stdin?.end(stdin ?? '');
    });
  const script = path.join(bed.repoRoot, ARGOCD_HEALTH_DIR, 'health.lua');
  const fluxExample = path.join(bed.repoRoot, 'manifests/flux/kustomization-cel.yaml');
  return {
    binary,
    kstatus: async (object) => JSON.parse(await run(['kstatus'], JSON.stringify(object))) as Health,
    fluxKstatus: async (object) => JSON.parse(await run(['flux-kstatus'], JSON.stringify(object))) as Health,
    fluxCel: async (object) => JSON.parse(await run(['flux-cel', fluxExample], JSON.stringify(object))) as Health,
    argocd: async (object) => JSON.parse(await run(['argocd-health', script], JSON.stringify(object))) as Health,
    argocdTest: (dir) => run(['argocd-test', dir]),
  };
}
