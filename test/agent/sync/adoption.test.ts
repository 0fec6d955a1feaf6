import { describe, expect, it } from 'vitest';
import { FileTable } from '../../../src/agent/state/file-table.js';
import type { LocalRecord } from '../../../src/agent/state/record.js';
import { ADOPT_EVERY_INTERVALS, Adoption } from '../../../src/agent/sync/adoption.js';
import { captureLog } from '../support/helpers.js';
import { MemoryStore } from '../support/memory-store.js';

const INTERVAL_SECONDS = 60;

function adoptionAt(clock: { ms: number }) {
  const store = new MemoryStore();
  const adoption = new Adoption(
    { target: { store, prefix: 'project-a/s/' }, log: captureLog(), settings: { syncIntervalSeconds: INTERVAL_SECONDS }, now: () => clock.ms },
    { markDue: () => undefined },
  );
  const listings = () => store.calls.filter((call) => call.op === 'list').length;
  return { adoption, listings };
}

const record = (): LocalRecord => ({ bucket: 'memory', prefix: 'project-a/s/', hydrated: true, files: new FileTable() });
const signal = new AbortController().signal;

describe('adopting what others wrote under the prefix', () => {
  // Syncing on change runs a cycle every few seconds while the runner writes: the listing
  // (one request per 1,000 objects) must not follow the cycles.
  it('lists once per ten sync intervals however many cycles ran', async () => {
    const clock = { ms: 1_000_000 };
    const { adoption, listings } = adoptionAt(clock);
    for (let cycle = 0; cycle < 300; cycle += 1) {
      clock.ms += 2_000;
      await adoption.fromListing(record(), false, signal);
    }
    // 600 s of cycles every 2 s: one listing, at the tenth interval.
    expect(listings()).toBe(1);
    clock.ms += ADOPT_EVERY_INTERVALS * INTERVAL_SECONDS * 1000 - 1;
    await adoption.fromListing(record(), false, signal);
    expect(listings()).toBe(1);
    clock.ms += 1;
    await adoption.fromListing(record(), false, signal);
    expect(listings()).toBe(2);
  });

  it('lists in the final sync whenever it comes', async () => {
    const clock = { ms: 1_000_000 };
    const { adoption, listings } = adoptionAt(clock);
    await adoption.fromListing(record(), true, signal);
    expect(listings()).toBe(1);
  });
});
