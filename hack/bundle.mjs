// The shipped agent: one ES module, dist/crs-agent.mjs, bundled from controller/main.ts with esbuild
// (`npm run build` runs tsc first, for the type check and dist/controller/ that tools import).
// Why a bundle: the image then needs no node_modules, and the agent loads only the code it reaches
// (tree-shaken) instead of every module of its dependencies' indexes: that is most of its RSS.
// Stubbed (never loaded): what dockerode pulls in for features the agent never uses, namely ssh2
// (docker over ssh://; the agent talks to a unix socket) and the BuildKit gRPC session (@grpc/*,
// protobufjs; the agent builds no images). Reaching a stub throws a clear error instead.
//   node hack/bundle.mjs [--metafile]   (writes dist/crs-agent.mjs; --metafile also dist/crs-agent.meta.json)
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import process from 'node:process';
import { build } from 'esbuild';

const root = path.resolve(import.meta.dirname, '..');
const outfile = path.join(root, 'dist/crs-agent.mjs');
/** Packages the agent never uses that dockerode requires at load time. */
const STUBBED = /^(ssh2|cpu-features|@grpc\/grpc-js|@grpc\/proto-loader|protobufjs)(\/.*)?$/;

/** Resolves the stubbed packages to a module that throws as soon as anything of it is used. */
const stubUnused = {
  name: 'stub-unused',
  setup(b) {
    b.onResolve({ filter: STUBBED }, (args) => ({ path: args.path, namespace: 'stub' }));
    b.onLoad({ filter: /.*/, namespace: 'stub' }, (args) => ({
      contents: `function fail() { throw new Error(${JSON.stringify(`${args.path} is not bundled into the crs-controller agent (hack/bundle.mjs): the agent never uses it`)}); }
module.exports = new Proxy(fail, { get: (_t, key) => (key === '__esModule' ? false : fail), construct: fail, apply: fail });`,
      loader: 'js',
    }));
  },
};

const result = await build({
  entryPoints: [path.join(root, 'controller/main.ts')],
  outfile,
  bundle: true,
  platform: 'node',
  format: 'esm',
  target: 'node20',
  sourcemap: 'linked',
  legalComments: 'linked',
  metafile: true,
  logLevel: 'warning',
  plugins: [stubUnused],
  // CommonJS dependencies call require() for Node's built-ins; an ES module has none of its own.
  banner: { js: "import { createRequire as __crsCreateRequire } from 'node:module'; const require = __crsCreateRequire(import.meta.url);" },
});
if (process.argv.includes('--metafile')) writeFileSync(path.join(root, 'dist/crs-agent.meta.json'), JSON.stringify(result.metafile));
const bytes = result.metafile.outputs[path.relative(process.cwd(), outfile)]?.bytes;
process.stdout.write(`bundled ${path.relative(root, outfile)}${bytes ? ` (${(bytes / 1e6).toFixed(1)} MB)` : ''}\n`);
