import { describe, expect, it } from 'vitest';
import { MissingFiles, missingMessage } from '../../../src/agent/hydrate/missing-files.js';

describe('the message about files missing from S3', () => {
  it('names one file in the singular', () => {
    const missing = new MissingFiles();
    missing.add('artifacts/a.md');
    expect(missingMessage(missing)).toBe(
      "1 file of this session's saved state was missing from S3 (expired or deleted); the runner started without it: artifacts/a.md",
    );
  });

  it('fits the 4096 bytes the kubelet keeps of a termination message, saying how many it left out', () => {
    const missing = new MissingFiles();
    for (let i = 0; i < 500; i += 1) missing.add(`artifacts/${String(i).padStart(3, '0')}-${'x'.repeat(40)}.md`);
    const message = missingMessage(missing);
    expect(Buffer.byteLength(message)).toBeLessThanOrEqual(4096);
    expect(message).toMatch(/^500 files of this session's saved state were missing from S3/);
    const named = message.match(/artifacts\//g)!.length;
    expect(message.endsWith(` (and ${500 - named} more)`)).toBe(true);
  });

  it('prints a key with a newline on one line', () => {
    const missing = new MissingFiles();
    missing.add('artifacts/a\nWARNING: forged');
    expect(missingMessage(missing)).toContain('artifacts/a\\nWARNING: forged');
  });
});
