import { describe, expect, it } from 'vitest';
import { createLogger } from '../../controller/log.js';

describe('createLogger', () => {
  it('writes one JSON object a line with base fields and drops lines below the level', () => {
    const lines: string[] = [];
    const log = createLogger(
      'info',
      (l) => lines.push(l),
      { node: 'n1' },
      () => new Date('2026-01-01T00:00:00Z'),
    );
    log.debug('hidden');
    log.with({ resource: 'ns/x' }).warn('restore failed', { reason: 'RestoreRace', err: Object.assign(new Error('boom'), { code: 'E1' }) });
    expect(lines).toHaveLength(1);
    expect(JSON.parse(lines[0] ?? '')).toEqual({
      ts: '2026-01-01T00:00:00.000Z',
      level: 'warn',
      msg: 'restore failed',
      node: 'n1',
      resource: 'ns/x',
      reason: 'RestoreRace',
      err: { name: 'Error', message: 'boom', code: 'E1' },
    });
  });
});
