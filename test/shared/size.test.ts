import { describe, expect, it } from 'vitest';
import { formatBytes, parseSize } from '../../src/shared/size.js';

describe('parseSize', () => {
  it.each([
    ['1024', 1024],
    ['1K', 1000],
    ['1Ki', 1024],
    ['1Gi', 2 ** 30],
    ['1G', 1e9],
    ['1.5Mi', 1.5 * 2 ** 20],
    ['10MB', 10e6],
    [' 2gi ', 2 * 2 ** 30],
  ])('%s is %d bytes', (text, bytes) => {
    expect(parseSize(text)).toBe(bytes);
  });

  it.each(['', 'abc', '-1', '1X', '1 Gi bytes'])('rejects %j', (text) => {
    expect(parseSize(text)).toBeUndefined();
  });

  it('formats sizes for log lines', () => {
    expect(formatBytes(10)).toBe('10 B');
    expect(formatBytes(1536)).toBe('1.5 KiB');
    expect(formatBytes(2 ** 30)).toBe('1.0 GiB');
  });
});
