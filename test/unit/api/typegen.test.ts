// The type generator's rules, on small schemas (the real schema's output is checked in generated.test.ts).
import { describe, expect, it } from 'vitest';
import { TypegenError, renderTypes } from '../../../hack/gen/typegen.js';
import type { SchemaNode } from '../../../controller/api/schema.js';

describe('renderTypes', () => {
  it('makes required and defaulted properties present, others optional, and honours x-ts-* keys', () => {
    const out = renderTypes({
      type: 'object',
      'x-ts-name': 'Thing',
      required: ['a'],
      properties: {
        a: { type: 'string' },
        b: { type: 'integer', default: 3 },
        c: { type: 'boolean', default: false, 'x-ts-optional': true },
        d: { type: 'string' },
        e: { type: 'boolean', 'x-ts-omit': true },
        f: { type: 'object', 'x-ts-type': 'ObjectMeta', 'x-ts-required': true },
        g: { type: 'object', additionalProperties: { type: 'string' } },
        h: { type: 'array', items: { type: 'string', enum: ['x', 'y'] } },
      },
    });
    expect(out).toContain(
      [
        'export interface Thing {',
        '  a: string;',
        '  b: number;',
        '  c?: boolean;',
        '  d?: string;',
        '  f: ObjectMeta;',
        '  g?: Record<string, string>;',
        "  h?: ('x' | 'y')[];",
        '}',
      ].join('\n'),
    );
    expect(out).not.toContain('  e');
  });

  it('declares named children before their parent, once, even when used twice', () => {
    const shared: SchemaNode = { type: 'object', 'x-ts-name': 'Shared', properties: { v: { type: 'string' } } };
    const out = renderTypes({
      type: 'object',
      'x-ts-name': 'Thing',
      properties: { one: shared, two: { type: 'array', items: shared } },
    });
    expect(out.match(/export interface Shared /g)).toHaveLength(1);
    expect(out.indexOf('export interface Shared')).toBeLessThan(out.indexOf('export interface Thing'));
    expect(out).toContain('  one?: Shared;\n  two?: Shared[];');
  });

  it('refuses two different nodes with one name', () => {
    const a: SchemaNode = { type: 'object', 'x-ts-name': 'Same', properties: {} };
    const b: SchemaNode = { type: 'object', 'x-ts-name': 'Same', properties: { x: { type: 'string' } } };
    expect(() => renderTypes({ type: 'object', 'x-ts-name': 'Thing', properties: { a, b } })).toThrow(TypegenError);
  });
});
