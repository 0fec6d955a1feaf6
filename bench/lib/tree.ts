import { createHash, randomBytes } from 'node:crypto';
import { spawn } from 'node:child_process';
import { createReadStream } from 'node:fs';
import { mkdir, readdir, rm, utimes, writeFile } from 'node:fs/promises';
import path from 'node:path';
import pLimit from 'p-limit';

export interface TreeSpec {
  smallFiles: number;
  smallBytes: number;
  bigFiles: number;
  bigBytes: number;
  // Share of the small files rewritten by the "1% changed" scenario.
  changedFraction: number;
}

export interface Tree {
  spec: TreeSpec;
  // The workspace every tool starts from (copied per run, mtimes kept).
  base: string;
  // The changed files at the same relative paths (same sizes, new bytes).
  changes: string;
  files: number;
  bytes: number;
  changedFiles: number;
  // SHA-1 of every file of the workspace after the change set, what a restore must give back.
  expected: Map<string, string>;
}

// The same three sync paths a session pod has; a session's many small files are spread over
// nested folders like a Claude project's transcripts and a runner's artifacts.
const TOPS = ['.claude/projects', '.claude/projects', '.claude/todos', 'artifacts', 'artifacts', 'uploads'];
const BASE_MTIME = new Date(Date.UTC(2026, 0, 1));

function smallPath(index: number): string {
  const top = TOPS[index % TOPS.length]!;
  return path.join(top, `d${Math.floor(index / 100)}`, `file-${index}.bin`);
}

async function writeFiles(
  root: string,
  entries: Array<{ rel: string; bytes: number }>,
  mtime: Date,
  digests: Map<string, string>,
): Promise<void> {
  const limit = pLimit(32);
  const dirs = new Set(entries.map((entry) => path.dirname(path.join(root, entry.rel))));
  for (const dir of dirs) await mkdir(dir, { recursive: true });
  await Promise.all(
    entries.map((entry) =>
      limit(async () => {
        const file = path.join(root, entry.rel);
        const bytes = randomBytes(entry.bytes);
        digests.set(entry.rel, createHash('sha1').update(bytes).digest('hex'));
        await writeFile(file, bytes);
        await utimes(file, mtime, mtime);
      }),
    ),
  );
}

/** Writes the base workspace and the change set once; every tool gets a copy of the same bytes. */
export async function generateTree(dir: string, spec: TreeSpec): Promise<Tree> {
  const base = path.join(dir, 'base');
  const changes = path.join(dir, 'changes');
  await rm(dir, { recursive: true, force: true });
  const small = Array.from({ length: spec.smallFiles }, (_, i) => ({ rel: smallPath(i), bytes: spec.smallBytes }));
  const big = Array.from({ length: spec.bigFiles }, (_, i) => ({
    rel: path.join('artifacts', 'big', `blob-${i}.bin`),
    bytes: spec.bigBytes,
  }));
  const expected = new Map<string, string>();
  await writeFiles(base, [...small, ...big], BASE_MTIME, expected);
  const step = Math.max(1, Math.round(1 / spec.changedFraction));
  const changed = small.filter((_, i) => i % step === 0);
  await writeFiles(changes, changed, BASE_MTIME, expected);
  return {
    spec,
    base,
    changes,
    files: small.length + big.length,
    bytes: spec.smallFiles * spec.smallBytes + spec.bigFiles * spec.bigBytes,
    changedFiles: changed.length,
    expected,
  };
}

function run(command: string, args: string[]): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, { stdio: ['ignore', 'ignore', 'inherit'] });
    child.on('error', reject);
    child.on('exit', (code) => (code === 0 ? resolve() : reject(new Error(`${command} ${args.join(' ')}: exit ${code}`))));
  });
}

/** Copies a tree keeping mtimes (cp -a is several times faster than a walk in Node). */
export async function copyTree(from: string, to: string): Promise<void> {
  await rm(to, { recursive: true, force: true });
  await mkdir(to, { recursive: true });
  await run('cp', ['-a', `${from}/.`, to]);
}

/**
 * Rewrites files the way a runner does: in place, so they get the current time as mtime.
 * Tools that compare the local mtime with the object's upload time (s5cmd, aws-cli) only
 * see a change that happened after the upload.
 */
export async function overwriteWith(changes: string, workspace: string): Promise<void> {
  await run('cp', ['-R', '--no-preserve=all', `${changes}/.`, workspace]);
}

async function listFiles(root: string, rel = ''): Promise<string[]> {
  const entries = await readdir(path.join(root, rel), { withFileTypes: true });
  const nested = await Promise.all(
    entries.map(async (entry) => {
      const child = path.join(rel, entry.name);
      if (entry.isDirectory()) return listFiles(root, child);
      return entry.isFile() ? [child] : [];
    }),
  );
  return nested.flat();
}

function digest(file: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const hash = createHash('sha1');
    createReadStream(file)
      .on('error', reject)
      .on('data', (chunk) => hash.update(chunk))
      .on('end', () => resolve(hash.digest('hex')));
  });
}

/**
 * Proves a restore is complete and byte-identical: a fast restore that lost or garbled files
 * would otherwise win the table.
 */
export async function assertRestored(expected: Map<string, string>, actual: string): Promise<void> {
  const got = new Set(await listFiles(actual));
  const missing = [...expected.keys()].filter((rel) => !got.has(rel));
  if (missing.length > 0) {
    throw new Error(`restore is missing ${missing.length} of ${expected.size} files, e.g. ${missing.slice(0, 3).join(', ')}`);
  }
  const limit = pLimit(16);
  const differing = (
    await Promise.all(
      [...expected].map(([rel, digestWanted]) =>
        limit(async () => ((await digest(path.join(actual, rel))) === digestWanted ? null : rel)),
      ),
    )
  ).filter((rel): rel is string => rel !== null);
  if (differing.length > 0) {
    throw new Error(`restore differs in ${differing.length} files, e.g. ${differing.slice(0, 3).join(', ')}`);
  }
}
