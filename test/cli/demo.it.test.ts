import { beforeAll, describe, expect, it } from 'vitest';
import { compileDemo, runDemo } from '../support/demo.js';

let main: string;

beforeAll(async () => {
  main = await compileDemo('integration');
}, 120_000);

const FILES = [
  '/app/.claude/projects/-workspace/history.jsonl',
  '/workspace/artifacts/report.md',
  '/workspace/uploads/data.bin',
  '/workspace/artifacts/late.txt',
];

function checksums(text: string, pattern: RegExp): Map<string, string> {
  return new Map([...text.matchAll(pattern)].map((m) => [m[1]!, m[2]!]));
}

// `npm run demo`, the README's first command: a session's whole life on this machine.
describe('the local demo', { timeout: 150_000 }, () => {
  it('admits a pod, hydrates, syncs, syncs on SIGTERM, and a second pod restores the same bytes, in under a minute', () => {
    const result = runDemo(main);
    expect(result.stderr).toBe('');
    expect(result.code, result.stdout).toBe(0);
    const out = result.stdout;
    const [firstLife, secondLife] = out.split('a new runner pod sess-7f3a-runner-2');
    expect(firstLife).toContain('init-hydrate | ');
    expect(firstLife).toMatch(/No existing state found, starting fresh session/);
    expect(firstLife).toMatch(/state-sync \| \[[^\]]+\] Sync complete \(\d+ paths synced\)\n[^]*Received SIGTERM/);
    expect(firstLife).toContain('Final sync complete, exiting');
    // The layout the README documents, metadata.json beside the data.
    for (const key of ['.claude/projects/-workspace/history.jsonl', 'artifacts/report.md', 'artifacts/late.txt', 'uploads/data.bin', 'metadata.json']) {
      expect(firstLife).toMatch(new RegExp(` B  project-a/sess-7f3a/${key.replaceAll('.', '\\.')}\n`));
    }
    expect(secondLife).toMatch(/Hydrate complete \(4 files restored/);

    // The written checksums (the late file only reaches S3 through the final sync) and the
    // restored ones, read independently of the demo's own verdict.
    const written = checksums(firstLife!, /^ {3}(\/\S+)\s+(?:\d+ B {2})?sha256 ([0-9a-f]{16})\s*$/gm);
    const late = /writes (\S+) \(sha256 ([0-9a-f]{16})\)/.exec(firstLife!);
    written.set(late![1]!, late![2]!);
    const restored = checksums(secondLife!, /^ {3}(\/\S+)\s+sha256 ([0-9a-f]{16}) {2}same$/gm);
    expect([...written.keys()].sort()).toEqual([...FILES].sort());
    expect(restored).toEqual(written);
    expect(out).not.toContain('DIFFERENT');

    // No credential reaches the output: the demo's MinIO root keys are random per run,
    // so the secret line names the keys only.
    expect(out).toMatch(/S3_ACCESS_KEY, S3_SECRET_KEY set/);
    expect(out).not.toMatch(/S3_(ACCESS|SECRET)_KEY=/);
    expect(out).toContain('SIGTERM to the webhook: drained and exited with status 0');
    expect(result.ms).toBeLessThan(60_000);
  });
});
