import { spawnSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';

const cli = new URL('../../dist/cli.js', import.meta.url).pathname;

// What rm and gc say before they reach a cluster; the rest is test/e2e/retention.test.ts.
function run(args: string[]) {
  const result = spawnSync(process.execPath, [cli, ...args], { encoding: 'utf8', env: { PATH: process.env.PATH ?? '', HOME: '/nonexistent' } });
  return { code: result.status, stdout: result.stdout, stderr: result.stderr };
}

describe('session-storage rm / gc before the cluster', { timeout: 30_000 }, () => {
  it.each([[['rm', 'project-a/sess-1']], [['rm', 'project-a/sess-1', '--yes']], [['gc']], [['gc', '--yes', '--retention', '7d']]])(
    '%j exits 2 saying where a kubeconfig comes from',
    (args) => {
      expect(run(args)).toEqual({
        code: 2,
        stdout: '',
        stderr: 'error: no kubeconfig found: set KUBECONFIG, create ~/.kube/config, or pass --kubeconfig FILE\n',
      });
    },
  );

  it.each([
    [['rm', 'project-a'], 'error: expected NAMESPACE/SESSION, got "project-a"\n'],
    [['rm', 'project-a/Sess_1'], 'error: session "Sess_1" is not a DNS label (lowercase letters, digits and "-")\n'],
    [['gc', '--retention', 'soon'], 'error: --retention must be a duration like 30d, 12h or 90m, got "soon"\n'],
    [['gc', '--retention', '0d'], 'error: --retention must be a duration like 30d, 12h or 90m, got "0d"\n'],
  ])('%j is a usage error (exit 2)', (args, message) => {
    expect(run(args)).toEqual({ code: 2, stdout: '', stderr: message });
  });

  it('lists both in the help', () => {
    const help = run(['--help']).stdout;
    expect(help).toMatch(/^ {2}rm \[options\] <namespace\/session>/m);
    expect(help).toMatch(/^ {2}gc \[options\]/m);
  });
});
