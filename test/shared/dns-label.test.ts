import { describe, expect, it } from 'vitest';
import { isDnsLabel } from '../../src/shared/dns-label.js';

describe('isDnsLabel', () => {
  it.each(['a', '0', 'project-a', 'sess-1', 'a'.repeat(63), `a${'-'.repeat(61)}z`])('accepts %s', (value) => {
    expect(isDnsLabel(value)).toBe(true);
  });

  it.each(['', 'A', 'Project_A', '-a', 'a-', 'a.b', '../etc', 'a'.repeat(64), 'sess 1', 'a\n'])('refuses %j', (value) => {
    expect(isDnsLabel(value)).toBe(false);
  });
});
