import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { FileTable } from '../../../src/agent/state/file-table.js';
import type { FileEntry } from '../../../src/agent/state/metadata.js';

// Keys as sessions have them and as they should not: odd characters, a 255-byte name,
// unicode (combining marks, astral planes), names a plain object would treat specially.
const oddKey = fc.oneof(
  fc.constantFrom('__proto__', 'constructor', 'toString', '', ' ', 'a/b', 'artifacts/é', 'artifacts/e\u0301', 'x/😀', 'a\nb', '‛E9'),
  fc.string({ unit: 'grapheme', maxLength: 8 }),
  fc.string({ unit: 'binary', maxLength: 8 }),
  fc.constant(`artifacts/${'n'.repeat(255)}`),
  fc.constant(`artifacts/${'é'.repeat(127)}x`),
);

const entry: fc.Arbitrary<FileEntry> = fc.record(
  {
    size: fc.oneof(fc.nat(), fc.constant(5 * 1024 ** 4), fc.constant(Number.MAX_SAFE_INTEGER)),
    mtimeMs: fc.oneof(fc.double({ noNaN: true }), fc.constant(-1), fc.constant(1_700_000_000_123.5)),
    mode: fc.nat({ max: 0o7777 }),
    uploadedAt: fc.oneof(fc.nat(), fc.constant(1_764_645_000_000.25)),
    sha256: fc.oneof(fc.constant('0'.repeat(64)), fc.constant('f'.repeat(64)), fc.uint8Array({ minLength: 32, maxLength: 32 }).map((bytes) => Buffer.from(bytes).toString('hex'))),
    remote: fc.constant(true as const),
  },
  { requiredKeys: ['size', 'mtimeMs'] },
);

type Op = { kind: 'set'; key: string; entry: FileEntry } | { kind: 'delete'; key: string } | { kind: 'get'; key: string };

const op: fc.Arbitrary<Op> = fc.oneof(
  { weight: 3, arbitrary: fc.record({ kind: fc.constant('set' as const), key: oddKey, entry }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('delete' as const), key: oddKey }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('get' as const), key: oddKey }) },
);

describe('FileTable', () => {
  it('answers as a Map of entry objects does, after any sequence of sets and deletes', () => {
    fc.assert(
      fc.property(fc.array(op, { maxLength: 200 }), (ops) => {
        const map = new Map<string, FileEntry>();
        const table = new FileTable();
        for (const step of ops) {
          if (step.kind === 'set') {
            map.set(step.key, step.entry);
            table.set(step.key, step.entry);
          } else if (step.kind === 'delete') {
            expect(table.delete(step.key)).toBe(map.delete(step.key));
          } else {
            expect(table.has(step.key)).toBe(map.has(step.key));
            expect(table.get(step.key)).toEqual(map.get(step.key));
          }
          expect(table.size).toBe(map.size);
        }
        expect([...table]).toEqual([...map]);
        expect([...table.keys()]).toEqual([...map.keys()]);
        expect([...table.values()]).toEqual([...map.values()]);
        // The record and metadata.json are written from these entries: the same JSON.
        expect(JSON.stringify([...table.entries()])).toBe(JSON.stringify([...map.entries()]));
      }),
      { numRuns: 300 },
    );
  });

  it('keeps -0 and fractional times exactly, and leaves absent fields absent', () => {
    const table = FileTable.from([
      ['a', { size: 0, mtimeMs: -0 }],
      ['b', { size: 1, mtimeMs: 1_700_000_000_123.456, mode: 0, uploadedAt: 0 }],
    ]);
    expect(Object.is(table.get('a')?.mtimeMs, -0)).toBe(true);
    expect(Object.keys(table.get('a')!)).toEqual(['size', 'mtimeMs']);
    expect(table.get('b')).toEqual({ size: 1, mtimeMs: 1_700_000_000_123.456, mode: 0, uploadedAt: 0 });
  });

  it('hands out its own copy of a key, and fresh entries a caller cannot change it through', () => {
    const table = new FileTable();
    const key = ['artifacts', 'x.txt'].join('/');
    table.set(key, { size: 1, mtimeMs: 2 });
    expect(table.keyOf('artifacts/x.txt')).toBe(key);
    expect(table.keyOf('artifacts/y.txt')).toBeUndefined();
    const read = table.get(key)!;
    read.size = 99;
    expect(table.get(key)?.size).toBe(1);
  });

  it('grows past its first columns and reuses the slots of deleted keys', () => {
    const table = new FileTable();
    for (let index = 0; index < 1000; index += 1) table.set(`k${index}`, { size: index, mtimeMs: index });
    for (let index = 0; index < 1000; index += 2) table.delete(`k${index}`);
    for (let index = 0; index < 500; index += 1) table.set(`n${index}`, { size: -index, mtimeMs: 0 });
    expect(table.size).toBe(1000);
    expect(table.get('k999')).toEqual({ size: 999, mtimeMs: 999 });
    expect(table.get('n499')).toEqual({ size: -499, mtimeMs: 0 });
    expect(table.get('k998')).toBeUndefined();
  });
});
