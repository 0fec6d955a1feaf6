const QUOTE = 0x22;
const BACKSLASH = 0x5c;
const OPEN = 0x7b;
const CLOSE = 0x7d;
const OPEN_LIST = 0x5b;
const CLOSE_LIST = 0x5d;
const COMMA = 0x2c;

// Members of the streamed object are parsed this many bytes at a time.
const BATCH_BYTES = 64 * 1024;

/**
 * Reads a JSON document whose top-level object has one large object member (`member`),
 * without holding the document or that object at once: the member's own members are
 * handed to `onBatch` a few hundred at a time, each batch an object JSON.parse made, and
 * the rest of the document is returned as its JSON text with the member as `{}`.
 * Reading a large record whole (its text, and the object JSON.parse built of it) was the
 * peak of a cycle that changed nothing (docs/BENCHMARKS.md).
 * The bytes are only split here, at the commas between members; JSON.parse of the pieces
 * and of the rest checks the syntax, so a document JSON.parse rejects is rejected here
 * too (a SyntaxError). UTF-8 multibyte sequences hold no ASCII bytes, so the bytes this
 * looks for are never part of another character.
 */
export async function parseStreamedMember(
  chunks: AsyncIterable<Buffer>,
  member: string,
  onBatch: (members: Record<string, unknown>) => void,
): Promise<string> {
  const scanner = new MemberScanner(member, onBatch);
  for await (const chunk of chunks) scanner.scan(chunk);
  return scanner.rest();
}

/** The state of one read, carried from chunk to chunk. */
class MemberScanner {
  private readonly wanted: Buffer;
  private readonly restParts: Buffer[] = [];
  private batch: Buffer[] = [];
  private batchBytes = 0;
  private depth = 0;
  private inString = false;
  private escaped = false;
  // Inside the streamed member's object (depth 2 and below).
  private streaming = false;
  // The last string that closed at depth 1, as bytes: the key of the value that follows.
  private keyStart = -1;
  private lastKey: Buffer[] = [];
  private keyBuffer: Buffer[] = [];
  // Whether the last batch ended at a comma: a member must follow.
  private afterComma = false;
  // Where the current piece of the chunk began: bytes go either to the batch or to the rest.
  private from = 0;

  constructor(
    private readonly member: string,
    private readonly onBatch: (members: Record<string, unknown>) => void,
  ) {
    this.wanted = Buffer.from(JSON.stringify(member));
  }

  scan(chunk: Buffer): void {
    this.from = 0;
    if (this.keyStart >= 0) this.keyStart = 0;
    for (let index = 0; index < chunk.length; index += 1) {
      const byte = chunk[index]!;
      if (this.inString) this.stringByte(chunk, byte, index);
      else this.structureByte(chunk, byte, index);
    }
    if (this.keyStart >= 0) this.keyBuffer.push(chunk.subarray(this.keyStart));
    if (this.streaming) {
      this.batch.push(chunk.subarray(this.from));
      this.batchBytes += chunk.length - this.from;
    } else {
      this.restParts.push(chunk.subarray(this.from));
    }
  }

  /** The document without the streamed member's members, as JSON text. */
  rest(): string {
    return Buffer.concat(this.restParts).toString('utf8');
  }

  private stringByte(chunk: Buffer, byte: number, index: number): void {
    if (this.escaped) this.escaped = false;
    else if (byte === BACKSLASH) this.escaped = true;
    else if (byte === QUOTE) {
      this.inString = false;
      if (this.keyStart >= 0) {
        this.keyBuffer.push(chunk.subarray(this.keyStart, index + 1));
        this.lastKey = this.keyBuffer;
        this.keyBuffer = [];
        this.keyStart = -1;
      }
    }
  }

  private structureByte(chunk: Buffer, byte: number, index: number): void {
    if (byte === QUOTE) {
      this.inString = true;
      if (this.depth === 1) {
        this.keyStart = index;
        this.keyBuffer = [];
      }
    } else if (byte === OPEN || byte === OPEN_LIST) {
      this.depth += 1;
      if (this.depth === 2 && byte === OPEN && Buffer.concat(this.lastKey).equals(this.wanted)) {
        this.restParts.push(chunk.subarray(this.from, index + 1));
        this.from = index + 1;
        this.streaming = true;
      }
    } else if (byte === CLOSE || byte === CLOSE_LIST) {
      if (this.depth === 2 && this.streaming) {
        this.endBatch(chunk, index, false);
        this.from = index;
        this.streaming = false;
      }
      this.depth -= 1;
    } else if (byte === COMMA && this.depth === 2 && this.streaming && this.batchBytes + index - this.from >= BATCH_BYTES) {
      this.endBatch(chunk, index, true);
      this.from = index + 1;
    }
  }

  /** Hands the batch, up to `index` in `chunk`, to onBatch. */
  private endBatch(chunk: Buffer, index: number, atComma: boolean): void {
    this.batch.push(chunk.subarray(this.from, index));
    const text = Buffer.concat(this.batch).toString('utf8');
    this.batch = [];
    this.batchBytes = 0;
    if (text.trim() === '') {
      if (this.afterComma) throw new SyntaxError(`a comma without a member after it in ${this.member}`);
    } else {
      this.onBatch(JSON.parse(`{${text}}`) as Record<string, unknown>);
    }
    this.afterComma = atComma;
  }
}
