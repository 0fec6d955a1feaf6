import { mkdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { z } from 'zod';
import { fileEntrySchema, type FileMap } from './manifest.js';

// The pod-local record, kept in AGENT_STATE_DIR (an EmptyDir shared by init-hydrate and
// state-sync). `hydrated` is true only when a hydrate completed in this pod: it is the
// permission to propagate deletions (data-safety invariant 1). `files` is what the agent
// knows is in S3, with the local stat it had when uploaded or restored.
const recordSchema = z.object({
  version: z.literal(1),
  bucket: z.string(),
  prefix: z.string(),
  hydrated: z.boolean(),
  files: z.record(z.string(), fileEntrySchema),
  unrestored: z.array(z.string()).optional(),
});

export interface LocalRecord {
  bucket: string;
  prefix: string;
  hydrated: boolean;
  files: FileMap;
  // Keys hydrate found in S3 but could not restore (a name no local file can have, a key
  // that is also a directory, an object the server refused): absent locally, never deleted.
  unrestored?: Set<string>;
}

const FILE_NAME = 'record.json';

export async function readRecord(stateDir: string, bucket: string, prefix: string): Promise<LocalRecord | undefined> {
  let text: string;
  try {
    text = await readFile(path.join(stateDir, FILE_NAME), 'utf8');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw error;
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    return undefined;
  }
  const parsed = recordSchema.safeParse(json);
  // A record for another bucket or session says nothing about this one.
  if (!parsed.success || parsed.data.bucket !== bucket || parsed.data.prefix !== prefix) return undefined;
  return {
    bucket,
    prefix,
    hydrated: parsed.data.hydrated,
    files: new Map(Object.entries(parsed.data.files)),
    ...(parsed.data.unrestored ? { unrestored: new Set(parsed.data.unrestored) } : {}),
  };
}

export async function writeRecord(stateDir: string, record: LocalRecord): Promise<void> {
  await mkdir(stateDir, { recursive: true });
  const target = path.join(stateDir, FILE_NAME);
  const temp = `${target}.tmp`;
  const body = JSON.stringify({
    version: 1,
    bucket: record.bucket,
    prefix: record.prefix,
    hydrated: record.hydrated,
    files: Object.fromEntries(record.files),
    unrestored: record.unrestored?.size ? [...record.unrestored] : undefined,
  });
  await writeFile(temp, body);
  await rename(temp, target);
}

export async function clearRecord(stateDir: string): Promise<void> {
  await rm(path.join(stateDir, FILE_NAME), { force: true });
}
