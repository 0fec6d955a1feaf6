import { createHash } from 'node:crypto';
import type { FileHandle } from 'node:fs/promises';

/*
 * Content hashes (rule 9): every upload carries the SHA-256 of its bytes, which the server
 * verifies (x-amz-checksum-sha256, base64), and the manifest keeps it (hex), so every
 * restore can be checked against what was uploaded.
 */

const HEX_SHA256 = /^[0-9a-f]{64}$/;

export function isSha256Hex(value: unknown): value is string {
  return typeof value === 'string' && HEX_SHA256.test(value);
}

export function sha256Hex(bytes: Uint8Array): string {
  return createHash('sha256').update(bytes).digest('hex');
}

// The header's spelling of a hex digest.
export function hexToBase64(hex: string): string {
  return Buffer.from(hex, 'hex').toString('base64');
}

// A stored x-amz-checksum-sha256 as hex, when it is the whole object's (a multipart
// upload's is a checksum of its parts' checksums, spelled "<base64>-<parts>").
export function wholeObjectSha256(base64: string | undefined): string | undefined {
  if (base64 === undefined || base64.includes('-')) return undefined;
  const bytes = Buffer.from(base64, 'base64');
  return bytes.length === 32 ? bytes.toString('hex') : undefined;
}

/**
 * The SHA-256 of a file's first `size` bytes, read through `buffer`; without it when the
 * file is shorter (it changed since the walk), with how much was read.
 */
export async function hashFileHead(file: FileHandle, size: number, buffer: Buffer): Promise<{ sha256?: string; read: number }> {
  const hash = createHash('sha256');
  let read = 0;
  while (read < size) {
    const { bytesRead } = await file.read(buffer, 0, Math.min(buffer.length, size - read), read);
    if (bytesRead === 0) return { read };
    hash.update(buffer.subarray(0, bytesRead));
    read += bytesRead;
  }
  return { sha256: hash.digest('hex'), read };
}
