import { createHash } from 'node:crypto';
import { cp, mkdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');

// The image holds dist/ and package.json under /app and no node_modules (Dockerfile). A
// bundle that still needed a package at run time would pass every test run from the repo,
// where Node finds node_modules beside dist/, and fail only in a pod. The tiers that run
// the agent and the webhook as processes run this copy instead, outside any node_modules.
const APP = path.join(tmpdir(), `ambient-session-storage-image-${createHash('sha256').update(ROOT).digest('hex').slice(0, 8)}`, 'app');

/** dist/cli.js as the image lays it out: run it with `node`, as the image's ENTRYPOINT does. */
export const IMAGE_CLI = path.join(APP, 'dist', 'cli.js');

/** Copies the fresh build into the image layout (the build's global setup, after each build). */
export async function layOutImage(): Promise<void> {
  await rm(APP, { recursive: true, force: true });
  await mkdir(APP, { recursive: true });
  await cp(path.join(ROOT, 'dist'), path.join(APP, 'dist'), { recursive: true });
  await cp(path.join(ROOT, 'package.json'), path.join(APP, 'package.json'));
}
