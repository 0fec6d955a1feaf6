#!/usr/bin/env node
import nodeModule from 'node:module';

// Modules compiled once are reused from the cache in os.tmpdir() (the agent containers'
// /tmp volume, shared by hydrate and sync): compiling `sync`'s modules was a large part of
// a no-change cycle (docs/BENCHMARKS.md). Where the directory is not writable, nothing is
// cached.
// (Node >= 22.1; the @types/node the project builds with predates it.)
(nodeModule as { enableCompileCache?: () => unknown }).enableCompileCache?.();

const { runCli } = await import('./program.js');
await runCli('session-storage');
