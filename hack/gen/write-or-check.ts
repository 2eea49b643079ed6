// The one write-or-check loop every generator shares: write each derived file, or with --check write
// nothing and name every stale file so CI fails with the fix in the message.
import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';

export interface GeneratedFile {
  /** Relative to the repository root. */
  path: string;
  content: string;
}

function readOrUndefined(file: string): string | undefined {
  try {
    return readFileSync(file, 'utf8');
  } catch {
    return undefined;
  }
}

/** Writes the stale files (or, when `check`, only reports them); returns how many were stale. */
export function writeOrCheck(repoRoot: string, files: GeneratedFile[], check: boolean): number {
  let stale = 0;
  for (const file of files) {
    const target = path.join(repoRoot, file.path);
    if (readOrUndefined(target) === file.content) continue;
    stale++;
    if (check) {
      console.error(`stale: ${file.path} differs from what hack/gen/main.ts generates`);
    } else {
      writeFileSync(target, file.content);
      console.log(`wrote ${file.path}`);
    }
  }
  return stale;
}
