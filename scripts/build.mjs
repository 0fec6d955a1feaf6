// Bundles the CLI for the images and the tests (`npm run build`, after tsc's type check).
// A start-up of the agent loaded ~220 modules one by one through the ES loader (a third of
// a no-change sync cycle); the bundle is a handful of files. Each lazily imported command
// and dependency (the webhook's @kubernetes/client-node and express, the AWS SDK,
// prom-client) stays a chunk of its own, loaded only by the command that needs it.
import { rm } from 'node:fs/promises';
import { build } from 'esbuild';

const outdir = new URL('../dist/', import.meta.url).pathname;

await rm(outdir, { recursive: true, force: true });
await build({
  entryPoints: ['src/cli.ts', 'src/kubectl-plugin.ts'],
  absWorkingDir: new URL('..', import.meta.url).pathname,
  outdir,
  bundle: true,
  splitting: true,
  format: 'esm',
  platform: 'node',
  target: 'node24',
  chunkNames: 'chunks/[name]-[hash]',
  sourcemap: 'linked',
  // The CommonJS dependencies (commander, pino, express...) require Node built-ins; an ES
  // module has no `require` of its own, so each output file gets one.
  banner: { js: "import { createRequire as __createRequire } from 'node:module'; const require = __createRequire(import.meta.url);" },
  logLevel: 'warning',
});
