import { readdirSync } from 'node:fs';
import fc from 'fast-check';
import jsonPatch from 'fast-json-patch';
import { describe, expect, it } from 'vitest';
import { diffPatch } from '../../../src/webhook/admission/json-patch.js';
import { mutate } from '../../../src/webhook/mutation/mutate.js';
import type { S3Decision } from '../../../src/webhook/config/s3-settings.js';
import { defaultConfig, fixturePath, loadPod } from '../fixtures.js';

// diffPatch replaces fast-json-patch's compare on the hot path: the serialised patch must
// be byte for byte what compare gives, for any pair of JSON documents.
const sameBytes = (before: object, after: object): void =>
  expect(JSON.stringify(diffPatch(before, after))).toBe(JSON.stringify(jsonPatch.compare(before, after)));

const container = fc.oneof(fc.array(fc.jsonValue(), { maxLength: 5 }), fc.dictionary(fc.string({ maxLength: 4 }), fc.jsonValue(), { maxKeys: 5 }));

type Pick = (min: number, max: number) => number;

// Edits of a document, so that pairs share keys and subtrees the way a mutation's do.
function edited(value: unknown, pick: Pick): unknown {
  if (typeof value !== 'object' || value === null) return pick(0, 3) === 0 ? pick(0, 5) : value;
  const roll = pick(0, 9);
  if (roll === 0) return value;
  if (roll === 1) return Array.isArray(value) ? { ...value } : Object.values(value);
  if (Array.isArray(value)) {
    const copy = value.map((item) => edited(item, pick));
    if (roll < 4) copy.splice(pick(0, copy.length), pick(0, 2), ...(roll === 2 ? ['x'] : []));
    if (roll === 4) copy.push(undefined);
    return copy;
  }
  const copy: Record<string, unknown> = {};
  for (const [key, item] of Object.entries(value)) {
    if (pick(0, 5) !== 0) copy[key] = edited(item, pick);
    else if (pick(0, 1) === 0) copy[key] = undefined;
  }
  if (roll < 5) copy[['a/b', 'c~d', 'new', '0'][pick(0, 3)]!] = pick(0, 1) === 0 ? { n: 1 } : null;
  return copy;
}

describe('diffPatch', () => {
  it('serialises to the same bytes as fast-json-patch compare for unrelated documents', () => {
    fc.assert(
      fc.property(container, container, (before, after) => {
        sameBytes(before, after);
      }),
      { numRuns: 1000 },
    );
  });

  it('serialises to the same bytes as fast-json-patch compare for a document and its edits', () => {
    fc.assert(
      fc.property(container, fc.gen(), (before, gen) => {
        const after = edited(before, (min, max) => gen(fc.integer, { min, max }));
        if (typeof after === 'object' && after !== null) sameBytes(before, after);
      }),
      { numRuns: 2000 },
    );
  });

  const decisions: S3Decision[] = [
    { kind: 'sync', reason: 's3-configured', hasRegion: true },
    { kind: 'ephemeral', reason: 'secret-absent', warning: 'S3 not configured: session state is ephemeral' },
  ];
  const pods = readdirSync(fixturePath('pods')).map((name) => name.replace(/\.yaml$/, ''));
  it.each(pods.flatMap((pod) => ['native', 'legacy'].flatMap((mode) => decisions.map((s3) => ({ pod, mode, s3 })))))(
    'gives compare’s bytes for $pod mutated in $mode mode ($s3.reason)',
    ({ pod, mode, s3 }) => {
      const input = loadPod(pod);
      const result = mutate(input, defaultConfig({ SIDECAR_MODE: mode }).mutation, s3);
      if (result.outcome !== 'denied') sameBytes(input, result.pod);
    },
  );
});
