// Pieces the benchmarks share: the machine they ran on, process usage from /proc, leaked restore
// copies in containerd's temporary folder, medians, and the marked sections of docs/benchmarks.md
// that each benchmark regenerates (everything outside its own markers is kept).
import { execFileSync } from 'node:child_process';
import { readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { folderBytes } from '../../controller/engine/hygiene.js';
import type { Testbed } from '../../test/integration/testbed.js';

export const log = (msg: string): void => void process.stderr.write(`[${new Date().toISOString().slice(11, 19)}] ${msg}\n`);

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

export function median(xs: readonly number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const mid = Math.floor(s.length / 2);
  return s.length % 2 ? (s[mid] ?? NaN) : ((s[mid - 1] ?? NaN) + (s[mid] ?? NaN)) / 2;
}

export interface Usage {
  rssMb: number;
  peakRssMb: number;
  /** user + system CPU since the process started. */
  cpuSeconds: number;
}

/** A process's RSS, peak RSS (VmHWM) and CPU time, read from /proc. */
export async function processUsage(pid: number): Promise<Usage> {
  const status = await readFile(`/proc/${pid}/status`, 'utf8');
  const kb = (field: string) => Number(new RegExp(`${field}:\\s+(\\d+)`).exec(status)?.[1] ?? 0);
  const fields = (await readFile(`/proc/${pid}/stat`, 'utf8')).split(') ')[1]?.split(' ') ?? [];
  const ticks = Number(fields[11]) + Number(fields[12]);
  return { rssMb: kb('VmRSS') / 1024, peakRssMb: kb('VmHWM') / 1024, cpuSeconds: ticks / 100 };
}

/** Samples a process's RSS every `everyMs` until stop(); the peak of the samples next to the kernel's VmHWM. */
export function sampleRss(pid: number, everyMs = 500): { stop(): number } {
  let peak = 0;
  const timer = setInterval(() => {
    processUsage(pid).then(
      (u) => (peak = Math.max(peak, u.rssMb)),
      () => undefined,
    );
  }, everyMs);
  return {
    stop() {
      clearInterval(timer);
      return peak;
    },
  };
}

/**
 * containerd leaves one ctrd-checkpoint* copy per restore (containerd issue 10166). Sums the bytes of
 * those made since `sinceMs` and, with `remove`, deletes them (the hand loop never does).
 */
export async function restoreCopiesSince(containerdTmp: string, sinceMs: number, remove: boolean): Promise<{ count: number; bytes: number }> {
  let count = 0;
  let bytes = 0;
  for (const entry of await readdir(containerdTmp).catch(() => [] as string[])) {
    if (!entry.startsWith('ctrd-checkpoint')) continue;
    const dir = path.join(containerdTmp, entry);
    const info = await stat(dir).catch(() => undefined);
    if (!info || info.mtimeMs < sinceMs - 1000) continue;
    count++;
    bytes += await folderBytes(dir);
    if (remove) await rm(dir, { recursive: true, force: true });
  }
  return { count, bytes };
}

function firstLine(cmd: string, args: string[], env: NodeJS.ProcessEnv = process.env): string {
  try {
    return (
      execFileSync(cmd, args, { env, stdio: ['ignore', 'pipe', 'ignore'] })
        .toString()
        .trim()
        .split('\n')[0] ?? 'unknown'
    );
  } catch {
    return 'unknown';
  }
}

export const loadAverage = (): string =>
  os
    .loadavg()
    .map((l) => l.toFixed(2))
    .join(' / ');

/** The machine as a markdown list: CPU, memory, kernel, OS, engine versions, disk, Node.js. */
export function machine(bed: Testbed): string {
  const dockerEnv = { ...process.env, DOCKER_HOST: bed.dockerHost };
  const cpu = os.cpus()[0]?.model ?? 'unknown';
  return [
    `- CPU: ${os.cpus().length} x ${cpu}`,
    `- memory: ${(os.totalmem() / 2 ** 30).toFixed(0)} GiB; kernel ${os.release()}; ${firstLine('sh', ['-c', '. /etc/os-release; echo $PRETTY_NAME'])}`,
    `- Docker ${firstLine('docker', ['version', '-f', '{{.Server.Version}}'], dockerEnv)}, containerd ${firstLine('containerd', ['--version']).split(' ')[2] ?? 'unknown'}, runc ${firstLine('runc', ['--version']).replace('runc version ', '')}, CRIU ${firstLine('criu', ['--version']).replace('Version: ', '')}`,
    `- disk: ${firstLine('sh', ['-c', `df -h --output=size,avail ${bed.dockerRoot} | tail -1`])} (size, free) under the Docker data root; containerd's temporary folder on ${firstLine('sh', ['-c', `df --output=fstype ${bed.containerdTmp} | tail -1`])}`,
    `- Node.js ${process.version}`,
  ].join('\n');
}

/**
 * Replaces the text between `<!-- NAME:begin ... -->` and `<!-- NAME:end -->` in `file` (both marker
 * lines kept); without those markers, appends the section at the end. Other sections stay as they are.
 */
export async function writeSection(file: string, name: string, body: string): Promise<void> {
  const old = await readFile(file, 'utf8').catch(() => '# Benchmarks\n');
  const begin = new RegExp(`<!-- ${name}:begin[^>]*-->`);
  const end = `<!-- ${name}:end -->`;
  const b = begin.exec(old);
  const e = old.indexOf(end);
  const section = `<!-- ${name}:begin (regenerated by hack/bench; edits inside are overwritten) -->\n${body.trim()}\n${end}`;
  const doc = b && e > b.index ? old.slice(0, b.index) + section + old.slice(e + end.length) : `${old.trimEnd()}\n\n${section}\n`;
  await writeFile(file, doc);
}

/** Runs a benchmark's main and exits with its outcome (the agent, watches and streams it started must not keep it alive). */
export function runMain(main: () => Promise<void>): void {
  main().then(
    () => process.exit(0),
    (err: unknown) => {
      console.error(err);
      process.exit(1);
    },
  );
}
