import { spawnSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';

const cli = new URL('../../dist/cli.js', import.meta.url).pathname;

// What the user tools say before they reach a cluster; the rest is test/e2e/tools.test.ts.
function run(args: string[]) {
  const result = spawnSync(process.execPath, [cli, ...args], {
    encoding: 'utf8',
    env: { PATH: process.env.PATH ?? '', HOME: '/nonexistent' },
  });
  return { code: result.status, stdout: result.stdout, stderr: result.stderr };
}

describe('session-storage ls / get / check / inject --secret-from-cluster without a kubeconfig', { timeout: 30_000 }, () => {
  it.each([
    [['ls', 'project-a/sess-1']],
    [['get', 'project-a/sess-1', 'artifacts']],
    [['check', 'project-a']],
    [['inject', '-f', new URL('../fixtures/pods/session-runner.yaml', import.meta.url).pathname, '--secret-from-cluster']],
  ])('%j exits 2 saying where a kubeconfig comes from', (args) => {
    expect(run(args)).toEqual({
      code: 2,
      stdout: '',
      stderr: 'error: no kubeconfig found: set KUBECONFIG, create ~/.kube/config, or pass --kubeconfig FILE\n',
    });
  });

  it.each([
    [['ls', 'project-a'], 'error: expected NAMESPACE/SESSION, got "project-a"\n'],
    [['get', 'project-a/Sess_1', 'x'], 'error: session "Sess_1" is not a DNS label (lowercase letters, digits and "-")\n'],
    [['check', 'project-a', '--kubeconfig', '/nonexistent/config'], /^error: cannot load the kubeconfig: ENOENT/],
    [['ls'], "error: missing required argument 'namespace/session'\n"],
  ])('%j is a usage error (exit 2)', (args, message) => {
    const out = run(args);
    expect(out.code).toBe(2);
    if (typeof message === 'string') expect(out.stderr).toBe(message);
    else expect(out.stderr).toMatch(message);
  });
});
