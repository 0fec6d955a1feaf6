import { spawnSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';

const root = new URL('../../', import.meta.url).pathname;
const cli = `${root}dist/cli.js`;
const fixture = (path: string) => `${root}test/fixtures/${path}`;

function migrateJob(args: string[]) {
  const result = spawnSync(process.execPath, [cli, 'migrate-job', ...args], {
    encoding: 'utf8',
    env: { PATH: process.env.PATH ?? '' },
  });
  return { code: result.status, stdout: result.stdout, stderr: result.stderr };
}

describe('session-storage migrate-job (built binary)', { timeout: 30_000 }, () => {
  it('prints the Job on stdout and the steps after it on stderr, exit 0', () => {
    const out = migrateJob(['-f', fixture('pods/session-runner.yaml'), '--secret', fixture('secrets/complete.yaml'), '-o', 'json']);
    expect(out.code, out.stderr).toBe(0);
    expect(JSON.parse(out.stdout)).toMatchObject({ kind: 'Job', metadata: { name: 'session-storage-migrate-sess-7f3a', namespace: 'project-a' } });
    expect(out.stderr).toContain('annotate pvc ambient-workspace-sess-7f3a ambient-code.io/session-storage-migrated-to=sess-7f3a');
  });

  it('refuses a pod it cannot copy with the reason, exit 1, and prints no Job', () => {
    const out = migrateJob(['-f', fixture('pods/platform-s3-operator.yaml'), '--secret', fixture('secrets/complete.yaml')]);
    expect(out).toMatchObject({ code: 1, stdout: '' });
    expect(out.stderr).toBe("cannot migrate: the platform's own containers already sync this session to S3\n");
  });

  it('exits 2 on unusable input, naming it', () => {
    expect(migrateJob(['-f', fixture('pods/missing.yaml'), '--secret', fixture('secrets/complete.yaml')])).toMatchObject({
      code: 2,
      stderr: `error: cannot read ${fixture('pods/missing.yaml')}: ENOENT\n`,
    });
    const notAPod = migrateJob(['-f', fixture('secrets/complete.yaml'), '--secret', fixture('secrets/complete.yaml')]);
    expect(notAPod.code).toBe(2);
    expect(notAPod.stderr).toContain("expected the session's Pod manifest");
    expect(notAPod.stdout).toBe('');
  });
});
