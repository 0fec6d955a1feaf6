// S3 keys are UTF-8; Linux file names are bytes. A name that is not valid UTF-8 (written
// by a tool using Latin-1, or cut mid-character) gets the key rclone gives it: each byte
// that is not part of a valid UTF-8 sequence becomes "‛" (U+201B) and two uppercase hex
// digits. The platform's rclone scripts decode such keys back to the original bytes.
// Valid names map to themselves, so every existing key stays what it was.
const QUOTE = '\u201b';

// Length of the valid UTF-8 sequence starting at `index`, or 0 (RFC 3629: no overlong
// forms, no surrogates, nothing above U+10FFFF).
function sequenceLength(bytes: Buffer, index: number): number {
  const lead = bytes[index] as number;
  if (lead < 0x80) return 1;
  let length: number;
  let low = 0x80;
  let high = 0xbf;
  if (lead >= 0xc2 && lead <= 0xdf) length = 2;
  else if (lead >= 0xe0 && lead <= 0xef) {
    length = 3;
    if (lead === 0xe0) low = 0xa0;
    if (lead === 0xed) high = 0x9f;
  } else if (lead >= 0xf0 && lead <= 0xf4) {
    length = 4;
    if (lead === 0xf0) low = 0x90;
    if (lead === 0xf4) high = 0x8f;
  } else return 0;
  if (index + length > bytes.length) return 0;
  const second = bytes[index + 1] as number;
  if (second < low || second > high) return 0;
  for (let offset = 2; offset < length; offset += 1) {
    const next = bytes[index + offset] as number;
    if (next < 0x80 || next > 0xbf) return 0;
  }
  return length;
}

/** The S3 key component for a file name read as raw bytes. */
export function keyName(raw: Buffer): string {
  let text = '';
  let runStart = 0;
  let index = 0;
  while (index < raw.length) {
    const length = sequenceLength(raw, index);
    if (length > 0) {
      index += length;
      continue;
    }
    text += raw.toString('utf8', runStart, index) + QUOTE + (raw[index] as number).toString(16).toUpperCase().padStart(2, '0');
    index += 1;
    runStart = index;
  }
  return text + raw.toString('utf8', runStart);
}
