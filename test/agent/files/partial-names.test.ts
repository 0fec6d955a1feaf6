import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { isPartialName, partialPaths } from '../../../src/agent/files/partial-names.js';

describe('temporary names of downloads', () => {
  const longest = `/workspace/artifacts/${'日'.repeat(85)}`;

  it('stay short whatever the final name, in the same directory', () => {
    expect(Buffer.byteLength(path.basename(longest))).toBe(255);
    for (const temp of Object.values(partialPaths(longest))) {
      expect(path.dirname(temp)).toBe('/workspace/artifacts');
      expect(Buffer.byteLength(path.basename(temp))).toBeLessThan(64);
    }
  });

  it('are the same for the same file (a retry resumes) and differ between files', () => {
    expect(partialPaths(longest)).toEqual(partialPaths(longest));
    expect(partialPaths('/w/a/x').data).not.toBe(partialPaths('/w/a/y').data);
  });

  it('are recognised as temporary, while user names are not', () => {
    for (const temp of Object.values(partialPaths(longest))) {
      expect(isPartialName(path.basename(temp))).toBe(true);
    }
    expect(isPartialName('report.pdf.session-storage-partial')).toBe(false);
    expect(isPartialName('.ss-notes.txt')).toBe(false);
  });
});
