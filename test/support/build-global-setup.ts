import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import type { TestProject } from 'vitest/node';
import { layOutImage } from './image-layout.js';

const ROOT = new URL('../../', import.meta.url).pathname;
const BUILD = Symbol.for('ambient-session-storage.test.build');

interface BuildState {
  current: Promise<void>;
  /** the build of each rerun, by the list of files it reruns (one list object per rerun) */
  reruns: WeakMap<object, Promise<void>>;
}

async function npmRunBuild(): Promise<void> {
  await promisify(execFile)('npm', ['run', 'build'], { cwd: ROOT }).catch((error: { stdout?: string; stderr?: string }) => {
    throw new Error(`npm run build failed:\n${error.stdout ?? ''}${error.stderr ?? ''}`);
  });
  await layOutImage();
}

// The tiers that run dist/cli.js build it first, so `vitest run` never tests a stale dist.
// Every project's global setup runs in the one main process: the first starts the build
// and the others wait for that same build. In watch mode each rerun builds again, once for
// all tiers (their rerun callbacks run together, with the same list of files).
export default async function setup(project: TestProject): Promise<void> {
  const state = ((globalThis as { [BUILD]?: BuildState })[BUILD] ??= { current: npmRunBuild(), reruns: new WeakMap() });
  await state.current;
  project.onTestsRerun((specifications) => {
    let build = state.reruns.get(specifications);
    if (build === undefined) state.reruns.set(specifications, (build = state.current = npmRunBuild()));
    return build;
  });
}
