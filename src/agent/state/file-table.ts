import type { FileEntry, FileMap } from './metadata.js';

const INITIAL_CAPACITY = 64;
const HASH_BYTES = 32;
const HASHED = 1;
const REMOTE = 2;

/**
 * A FileMap kept in columns: one slot per key, the entry's numbers in typed arrays. A Map of
 * entry objects cost an object and two boxed doubles per file, and as much again promoted
 * as garbage when the map was rebuilt (docs/BENCHMARKS.md); here a file is its key
 * string, a Map slot and 32 bytes of numbers. Entries are materialised on
 * read, so callers get fresh objects and never mutate the table behind its back.
 * An absent `mode` or `uploadedAt` is stored as NaN, which no stat or clock gives. A
 * `sha256` is kept as its 32 bytes (a hex string is 64 characters and a string header); a
 * byte of flags says whether the slot has one, and whether it is `remote`.
 */
export class FileTable implements FileMap {
  private readonly slots = new Map<string, number>();
  private readonly names: string[] = [];
  private sizes = new Float64Array(INITIAL_CAPACITY);
  private mtimes = new Float64Array(INITIAL_CAPACITY);
  private modes = new Float64Array(INITIAL_CAPACITY);
  private uploads = new Float64Array(INITIAL_CAPACITY);
  private hashes = new Uint8Array(INITIAL_CAPACITY * HASH_BYTES);
  // HASHED | REMOTE per slot.
  private flags = new Uint8Array(INITIAL_CAPACITY);
  private readonly free: number[] = [];

  static from(entries: Iterable<readonly [string, FileEntry]>): FileTable {
    const table = new FileTable();
    for (const [key, entry] of entries) table.set(key, entry);
    return table;
  }

  get size(): number {
    return this.slots.size;
  }

  has(key: string): boolean {
    return this.slots.has(key);
  }

  // The table's own copy of `key` when it has one: a caller holding an equal string made
  // elsewhere (the walk's) can keep this one and let its own go.
  keyOf(key: string): string | undefined {
    const slot = this.slots.get(key);
    return slot === undefined ? undefined : this.names[slot];
  }

  get(key: string): FileEntry | undefined {
    const slot = this.slots.get(key);
    return slot === undefined ? undefined : this.entryAt(slot);
  }

  set(key: string, entry: FileEntry): this {
    let slot = this.slots.get(key);
    if (slot === undefined) {
      slot = this.free.pop() ?? this.grow();
      this.slots.set(key, slot);
      this.names[slot] = key;
    }
    this.sizes[slot] = entry.size;
    this.mtimes[slot] = entry.mtimeMs;
    this.modes[slot] = entry.mode ?? Number.NaN;
    this.uploads[slot] = entry.uploadedAt ?? Number.NaN;
    this.flags[slot] = (entry.sha256 === undefined ? 0 : HASHED) | (entry.remote === true ? REMOTE : 0);
    if (entry.sha256 !== undefined) this.hashes.set(Buffer.from(entry.sha256, 'hex'), slot * HASH_BYTES);
    return this;
  }

  delete(key: string): boolean {
    const slot = this.slots.get(key);
    if (slot === undefined) return false;
    this.slots.delete(key);
    this.names[slot] = '';
    this.free.push(slot);
    return true;
  }

  // Insertion order, as a Map's.
  *entries(): MapIterator<[string, FileEntry]> {
    for (const [key, slot] of this.slots) yield [key, this.entryAt(slot)];
  }

  keys(): MapIterator<string> {
    return this.slots.keys();
  }

  *values(): MapIterator<FileEntry> {
    for (const slot of this.slots.values()) yield this.entryAt(slot);
  }

  [Symbol.iterator](): MapIterator<[string, FileEntry]> {
    return this.entries();
  }

  private entryAt(slot: number): FileEntry {
    const entry: FileEntry = { size: this.sizes[slot]!, mtimeMs: this.mtimes[slot]! };
    const mode = this.modes[slot]!;
    const uploadedAt = this.uploads[slot]!;
    if (!Number.isNaN(mode)) entry.mode = mode;
    if (!Number.isNaN(uploadedAt)) entry.uploadedAt = uploadedAt;
    const flags = this.flags[slot]!;
    if (flags & HASHED) entry.sha256 = Buffer.from(this.hashes.buffer, this.hashes.byteOffset + slot * HASH_BYTES, HASH_BYTES).toString('hex');
    if (flags & REMOTE) entry.remote = true;
    return entry;
  }

  // The next unused slot, doubling the columns when they are full.
  private grow(): number {
    const slot = this.names.length;
    if (slot === this.sizes.length) {
      const widen = (column: Float64Array) => {
        const wider = new Float64Array(column.length * 2);
        wider.set(column);
        return wider;
      };
      this.sizes = widen(this.sizes);
      this.mtimes = widen(this.mtimes);
      this.modes = widen(this.modes);
      this.uploads = widen(this.uploads);
      const wider = new Uint8Array(this.hashes.length * 2);
      wider.set(this.hashes);
      this.hashes = wider;
      const widerFlags = new Uint8Array(this.flags.length * 2);
      widerFlags.set(this.flags);
      this.flags = widerFlags;
    }
    this.names.push('');
    return slot;
  }
}
