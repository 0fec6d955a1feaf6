import { execFile } from 'node:child_process';
import { promisify } from 'node:util';

const ROOT = new URL('../../', import.meta.url).pathname;
const BUILT = Symbol.for('ambient-session-storage.test.built');

// The tiers that run dist/cli.js build it first, so `vitest run` never tests a stale dist.
// Global setups of every project run in the one main process: the build runs once per run.
export default async function setup(): Promise<void> {
  const state = globalThis as { [BUILT]?: true };
  if (state[BUILT]) return;
  await promisify(execFile)('npm', ['run', 'build'], { cwd: ROOT }).catch((error: { stdout?: string; stderr?: string }) => {
    throw new Error(`npm run build failed:\n${error.stdout ?? ''}${error.stderr ?? ''}`);
  });
  state[BUILT] = true;
}
