import { spawnSync } from 'node:child_process';
import { rm } from 'node:fs/promises';
import { join } from 'node:path';
import { ROOT } from '../../scripts/lib/minio.js';

// `npm run demo` compiles scripts/demo with its own tsconfig; each test file compiles its
// own copy so two tiers running at once never read a half-written build.
export async function compileDemo(name: string): Promise<string> {
  const outDir = join(ROOT, 'scripts/demo/build', `test-${name}`);
  await rm(outDir, { recursive: true, force: true });
  const tsc = spawnSync(process.execPath, [join(ROOT, 'node_modules/typescript/bin/tsc'), '-p', 'scripts/demo/tsconfig.json', '--outDir', outDir], {
    cwd: ROOT,
    encoding: 'utf8',
  });
  if (tsc.status !== 0) throw new Error(`tsc -p scripts/demo/tsconfig.json failed: ${tsc.stdout}${tsc.stderr}`);
  return join(outDir, 'scripts/demo/main.js');
}

export function runDemo(main: string, args: string[] = []) {
  const started = Date.now();
  const result = spawnSync(process.execPath, [main, ...args], {
    cwd: ROOT,
    encoding: 'utf8',
    timeout: 120_000,
  });
  return { code: result.status, stdout: result.stdout, stderr: result.stderr, ms: Date.now() - started };
}
