// Heap measurements for leak tests: a full garbage collection first, so "after GC" is what is kept.
// vitest runs without --expose-gc; V8 lets a running process turn the flag on and fetch gc() from a
// fresh context.
import v8 from 'node:v8';
import vm from 'node:vm';

v8.setFlagsFromString('--expose-gc');
const gc = vm.runInNewContext('gc') as () => void;

/** Bytes of JS heap in use after full collections. */
export function heapAfterGc(): number {
  gc();
  gc();
  return process.memoryUsage().heapUsed;
}
