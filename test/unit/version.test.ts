import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { VERSION, readVersion } from '../../controller/version.js';

const tmp = mkdtempSync(path.join(os.tmpdir(), 'crs-version-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

describe('readVersion', () => {
  it('is the version in the repository package.json when run from controller/', () => {
    const pkg = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string };
    expect(VERSION).toBe(pkg.version);
  });

  it('finds package.json two levels up, as from dist/controller/ or the image /app/dist/controller/', () => {
    const app = path.join(tmp, 'app');
    mkdirSync(path.join(app, 'dist/controller'), { recursive: true });
    writeFileSync(path.join(app, 'package.json'), JSON.stringify({ name: 'crs-controller', version: '9.8.7' }));
    expect(readVersion(path.join(app, 'dist/controller'))).toBe('9.8.7');
  });

  it("skips another package's package.json on the way up", () => {
    const outer = path.join(tmp, 'outer');
    mkdirSync(path.join(outer, 'inner/controller'), { recursive: true });
    writeFileSync(path.join(outer, 'package.json'), JSON.stringify({ name: 'crs-controller', version: '1.2.3' }));
    writeFileSync(path.join(outer, 'inner/package.json'), JSON.stringify({ name: 'something-else', version: '0.0.1' }));
    expect(readVersion(path.join(outer, 'inner/controller'))).toBe('1.2.3');
  });

  it('fails naming the package and the start folder when there is none', () => {
    const lonely = path.join(tmp, 'lonely/dist/controller');
    mkdirSync(lonely, { recursive: true });
    // The walk goes up to / ; the machine's root has no crs-controller package.json.
    expect(() => readVersion(lonely)).toThrow(/no package.json of crs-controller at or above .*lonely/);
  });
});
