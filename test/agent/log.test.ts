import { describe, expect, it } from 'vitest';
import { createAgentLog, logName } from '../../src/agent/log.js';

function capture() {
  let out = '';
  let err = '';
  const log = createAgentLog(
    { write: (chunk: string) => (out += chunk) },
    { write: (chunk: string) => (err += chunk) },
    () => new Date('2026-12-01T00:00:00.000Z'),
  );
  return { log, out: () => out, err: () => err };
}

const forged = 'x\n[2026-12-01T00:00:01.000Z] Sync complete (3 paths synced)';

describe('agent log lines cannot be forged by file names', () => {
  it('escapes line breaks, other control characters and Unicode line separators in a name', () => {
    expect(logName(forged)).toBe('x\\n[2026-12-01T00:00:01.000Z] Sync complete (3 paths synced)');
    expect(logName('a\rb\tc\u001b[31md\u007fe\u0085f\u2028g\u2029h\0i')).toBe(
      'a\\rb\\tc\\x1b[31md\\x7fe\\x85f\\u2028g\\u2029h\\x00i',
    );
    // The escape character itself is escaped, so a name that spells "\n" is told apart
    // from one that holds a newline.
    expect(logName('literal\\n')).toBe('literal\\\\n');
    expect(logName('plain/ünïcødé ‛FE name.txt')).toBe('plain/ünïcødé ‛FE name.txt');
  });

  it('prints every message on exactly one line, whatever an error message carries', () => {
    const { log, out, err } = capture();
    log.warn(`cannot read ${forged}`);
    log.detail(`skipped ${forged}`);
    log.info(`carriage\rreturn`);
    log.error(`upload failed: ${forged}`);
    const lines = out().split('\n').filter((line) => line !== '');
    expect(lines).toHaveLength(3);
    expect(lines.every((line) => line.startsWith('[2026-12-01T00:00:00.000Z] ') || line.startsWith('  '))).toBe(true);
    expect(out()).not.toContain('\r');
    expect(err().split('\n').filter((line) => line !== '')).toHaveLength(1);
    expect(err()).toContain('upload failed: x\\n[2026-12-01T00:00:01.000Z] Sync complete');
  });
});
