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
 * Reading a 100,000-file record whole (its text, and the object JSON.parse built of it)
 * was ~35 MiB at once, the peak of a cycle that changed nothing.
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
  const wanted = Buffer.from(JSON.stringify(member));
  const rest: Buffer[] = [];
  let batch: Buffer[] = [];
  let batchBytes = 0;
  let depth = 0;
  let inString = false;
  let escaped = false;
  // Inside the streamed member's object (depth 2 and below).
  let streaming = false;
  // The last string that closed at depth 1, as bytes: the key of the value that follows.
  let keyStart = -1;
  let lastKey: Buffer[] = [];
  let keyBuffer: Buffer[] = [];

  // Whether the last batch ended at a comma: a member must follow.
  let afterComma = false;
  const flush = (atComma: boolean) => {
    const text = Buffer.concat(batch).toString('utf8');
    batch = [];
    batchBytes = 0;
    if (text.trim() === '') {
      if (afterComma) throw new SyntaxError(`a comma without a member after it in ${member}`);
    } else {
      onBatch(JSON.parse(`{${text}}`) as Record<string, unknown>);
    }
    afterComma = atComma;
  };

  for await (const chunk of chunks) {
    // Where the current piece of `chunk` began: bytes go either to the batch or to the rest.
    let from = 0;
    if (keyStart >= 0) keyStart = 0;
    for (let index = 0; index < chunk.length; index += 1) {
      const byte = chunk[index]!;
      if (inString) {
        if (escaped) escaped = false;
        else if (byte === BACKSLASH) escaped = true;
        else if (byte === QUOTE) {
          inString = false;
          if (keyStart >= 0) {
            keyBuffer.push(chunk.subarray(keyStart, index + 1));
            lastKey = keyBuffer;
            keyBuffer = [];
            keyStart = -1;
          }
        }
        continue;
      }
      if (byte === QUOTE) {
        inString = true;
        if (depth === 1) {
          keyStart = index;
          keyBuffer = [];
        }
      } else if (byte === OPEN || byte === OPEN_LIST) {
        depth += 1;
        if (depth === 2 && byte === OPEN && Buffer.concat(lastKey).equals(wanted)) {
          rest.push(chunk.subarray(from, index + 1));
          from = index + 1;
          streaming = true;
        }
      } else if (byte === CLOSE || byte === CLOSE_LIST) {
        if (depth === 2 && streaming) {
          batch.push(chunk.subarray(from, index));
          batchBytes += index - from;
          flush(false);
          from = index;
          streaming = false;
        }
        depth -= 1;
      } else if (byte === COMMA && depth === 2 && streaming && batchBytes + index - from >= BATCH_BYTES) {
        batch.push(chunk.subarray(from, index));
        batchBytes += index - from;
        flush(true);
        from = index + 1;
      }
    }
    if (keyStart >= 0) keyBuffer.push(chunk.subarray(keyStart));
    if (streaming) {
      batch.push(chunk.subarray(from));
      batchBytes += chunk.length - from;
    } else {
      rest.push(chunk.subarray(from));
    }
  }
  return Buffer.concat(rest).toString('utf8');
}
