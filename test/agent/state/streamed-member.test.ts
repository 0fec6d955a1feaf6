import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { parseStreamedMember } from '../../../src/agent/state/streamed-member.js';

// The document's bytes cut at the given offsets, as a file stream's chunks are.
async function* chunksOf(bytes: Buffer, cuts: number[]): AsyncGenerator<Buffer> {
  let from = 0;
  for (const cut of [...new Set(cuts.map((cut) => cut % (bytes.length + 1)))].sort((a, b) => a - b)) {
    yield bytes.subarray(from, cut);
    from = cut;
  }
  yield bytes.subarray(from);
}

// What the reader gives back, put together again as one object.
async function read(text: string, cuts: number[] = []): Promise<unknown> {
  const members: Array<[string, unknown]> = [];
  const rest = await parseStreamedMember(chunksOf(Buffer.from(text), cuts), 'files', (batch) => {
    for (const key in batch) members.push([key, batch[key]]);
  });
  const document = JSON.parse(rest) as { files?: Record<string, unknown> };
  // Streamed, not left in the rest.
  if (document.files !== undefined) expect(document.files).toEqual({});
  if (members.length > 0) document.files = Object.fromEntries(members);
  return document;
}

const oddKey = fc.oneof(
  fc.string({ unit: 'grapheme', maxLength: 12 }),
  fc.string({ unit: 'binary', maxLength: 12 }),
  fc.constantFrom('"', '\\', '{', '}', ',', '[', ']', ':', 'files', '"files"', 'a\\"b', '😀', 'e\u0301'),
  fc.constant(`artifacts/${'é'.repeat(127)}`),
);
const entry = fc.record({ size: fc.nat(), mtimeMs: fc.double({ noNaN: true, noDefaultInfinity: true }), mode: fc.nat({ max: 0o7777 }) }, { requiredKeys: ['size', 'mtimeMs'] });
const recordLike = fc.record({
  version: fc.constant(1),
  bucket: oddKey,
  prefix: oddKey,
  hydrated: fc.boolean(),
  files: fc.dictionary(oddKey, entry, { maxKeys: 50 }),
  unrestored: fc.array(oddKey, { maxLength: 5 }),
});

describe('reading a JSON document with one member streamed', () => {
  it('gives what JSON.parse gives, for odd keys, pretty or compact, however the bytes are cut', async () => {
    await fc.assert(
      fc.asyncProperty(recordLike, fc.boolean(), fc.array(fc.nat(), { maxLength: 8 }), async (document, pretty, cuts) => {
        const text = pretty ? JSON.stringify(document, null, 2) : JSON.stringify(document);
        expect(await read(text, cuts)).toEqual(JSON.parse(text));
      }),
      { numRuns: 300 },
    );
  });

  it('hands a large member over in batches, all of them', async () => {
    const files = Object.fromEntries(Array.from({ length: 20_000 }, (_, index) => [`artifacts/"q",{}/${index}`, { size: index, mtimeMs: index + 0.5 }]));
    const text = JSON.stringify({ version: 1, files, after: [1, { files: 2 }] });
    let batches = 0;
    const rest = await parseStreamedMember(chunksOf(Buffer.from(text), [1000, 70_000, 70_001, 300_000]), 'files', () => {
      batches += 1;
    });
    expect(batches).toBeGreaterThan(5);
    expect(JSON.parse(rest)).toEqual({ version: 1, files: {}, after: [1, { files: 2 }] });
    expect(await read(text, [5, 65_536, 131_072])).toEqual(JSON.parse(text));
  });

  it('rejects what JSON.parse rejects: a cut-off document, a stray or doubled comma', async () => {
    const files = Object.fromEntries(Array.from({ length: 5_000 }, (_, index) => [`k${index}`, { size: index, mtimeMs: 1 }]));
    const good = JSON.stringify({ version: 1, files });
    for (const bad of [
      good.slice(0, -1),
      good.slice(0, good.length / 2),
      good.replace('}}}', '},}}'),
      good.replace('},"k4000"', '},,"k4000"'),
      good.replaceAll('},"k', '},\n,"k'),
      '{"version":1,"hydr',
      `{"files":{"a":"${'x'.repeat(70_000)}",}}`,
      `{"files":{"a":"${'x'.repeat(70_000)}",,"b":1}}`,
      '{"files":{"a":{"size":1]}',
    ]) {
      await expect(read(bad)).rejects.toThrow(SyntaxError);
    }
  });
});
