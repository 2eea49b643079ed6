// The agent's version, read from the project's package.json. The compiled agent runs from
// dist/controller/ (and /app/dist/controller/ in the image) while tsx runs controller/ directly, so
// the file is found by walking up from this module rather than by a fixed relative path.
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const PACKAGE_NAME = 'crs-controller';

/** The version of the nearest package.json named crs-controller at or above `fromDir`. */
export function readVersion(fromDir: string): string {
  for (let dir = fromDir; ; dir = path.dirname(dir)) {
    const file = path.join(dir, 'package.json');
    if (existsSync(file)) {
      const pkg = JSON.parse(readFileSync(file, 'utf8')) as { name?: string; version?: string };
      // A package.json of something else (a dependency's, a parent project's) is not ours: keep looking.
      if (pkg.name === PACKAGE_NAME && typeof pkg.version === 'string') return pkg.version;
    }
    if (path.dirname(dir) === dir) throw new Error(`no package.json of ${PACKAGE_NAME} at or above ${fromDir}`);
  }
}

export const VERSION = readVersion(path.dirname(fileURLToPath(import.meta.url)));
