// `npm run bench:soak`: the engine soak at full length (the soak test in `npm test` runs a shorter
// one): N restore/remove cycles (default 1000) of a tiny checkpoint through the real engine module,
// 10 at a time, measured for slow leaks: JS heap after a full GC, open handles, process warnings,
// checkpoint copies left in Docker's data root or containerd's temp dir. Writes the figures into
// the "Soak" section of docs/benchmarks.md. A benchmark, not a test.
//   npm run bench:soak -- --cycles 1000
import { readFile, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { docker, makeSource, newEngine, specFor, uid } from '../../test/integration/engine/helpers.js';
import { collectWarnings, diskLeftovers, failureCodes, handleGrowth, leakProbe, restoreRemoveCycles } from '../../test/integration/support/soak.js';
import { bringUpTestbed } from '../../test/integration/support/testbed-env.js';

const { values } = parseArgs({
  options: {
    cycles: { type: 'string', default: '1000' },
    lanes: { type: 'string', default: '10' },
    out: { type: 'string', default: 'docs/benchmarks.md' },
  },
});
const cycles = Number(values.cycles);
const lanes = Number(values.lanes);
const repoRoot = path.resolve(import.meta.dirname, '../..');
const bed = bringUpTestbed(repoRoot);
const MiB = 2 ** 20;
const SOAK_BEGIN = '<!-- soak:begin (hack/bench/soak.ts) -->';
// The bench rewrites its part only; the soak test's figures follow it, up to <!-- soak:end -->.
const SOAK_END = '<!-- soak:bench-end -->';

const source = await makeSource(bed, 'crs-bench-soak-src', 'bench', 1);
const engine = await newEngine(bed, { stopTimeoutSeconds: 0 });
const owner = { uid: uid(), namespace: 'bench', name: 'soak' };
const specOf = (i: number) => specFor(source, owner, `s${i}`, { template: { image: source.imageId, env: [{ name: 'APP_MEMORY_MB', value: '1' }] } });
const disk0 = await diskLeftovers(bed);
await restoreRemoveCycles(engine, 30, lanes, (i) => specOf(1_000_000 + i)); // warm-up
const before = leakProbe();
const rss0 = process.memoryUsage().rss;
const { result, warnings } = await collectWarnings(() => restoreRemoveCycles(engine, cycles, lanes, specOf));
const after = leakProbe();
const disk1 = await diskLeftovers(bed);
await engine.close();
await docker(bed).getContainer(source.name).remove({ force: true });

const growth = (after.heapBytes - before.heapBytes) / MiB;
const section = `${SOAK_BEGIN}
## Soak: restore/remove cycles through the engine

Produced by \`npm run bench:soak -- --cycles ${cycles}\` on ${new Date().toISOString().slice(0, 10)} (${os.cpus().length} x ${os.cpus()[0]?.model.trim() ?? 'CPU'}, Node.js ${process.version}, machine shared with other work):
${cycles} cycles, ${lanes} at a time, each restoring a replica of a 1 MB checkpoint and removing it, after 30 warm-up cycles.

| figure | value |
| --- | --- |
| cycles / failed | ${result.cycles} / ${result.failures.length}${result.failures.length ? ` (${JSON.stringify(failureCodes(result))}; first: ${result.failures[0]?.message.slice(0, 160).replace(/\|/g, '/')})` : ''} |
| wall time | ${result.seconds.toFixed(1)} s (${(result.cycles / result.seconds).toFixed(2)} cycles/s) |
| JS heap after full GC, before -> after | ${(before.heapBytes / MiB).toFixed(1)} -> ${(after.heapBytes / MiB).toFixed(1)} MiB (${growth >= 0 ? '+' : ''}${growth.toFixed(2)} MiB, ${((after.heapBytes - before.heapBytes) / cycles).toFixed(0)} bytes per cycle) |
| RSS before -> after | ${(rss0 / MiB).toFixed(0)} -> ${(process.memoryUsage().rss / MiB).toFixed(0)} MiB |
| open handles grown | ${JSON.stringify(handleGrowth(before, after))} |
| process warnings | ${warnings.length === 0 ? 'none' : warnings.join('; ')} |
| replica copies / ctrd-checkpoint folders left | ${disk1.replicaCopies - disk0.replicaCopies} / ${disk1.containerdCopies - disk0.containerdCopies} |

The soak test in \`npm test\` (test/integration/soak/soak.test.ts) runs 200 such cycles (1000 take
about 5 minutes on this shared 2-core machine) and 200 resources created and deleted through the
real apiserver and agent; its bounds: heap growth under 2 MiB (cycles) and 4 MiB (resources), no
warning, no new handle, nothing left on disk, no metric series left.
${SOAK_END}`;

const file = path.join(repoRoot, values.out);
const doc = await readFile(file, 'utf8');
const start = doc.indexOf(SOAK_BEGIN);
const end = doc.indexOf(SOAK_END);
const next =
  start >= 0 && end > start ? doc.slice(0, start) + section + doc.slice(end + SOAK_END.length) : `${doc.trimEnd()}\n\n${section}\n<!-- soak:end -->\n`;
await writeFile(file, next);
console.log(section);
process.exit(warnings.length === 0 ? 0 : 1);
