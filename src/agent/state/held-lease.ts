import { randomBytes } from 'node:crypto';
import { mkdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import * as z from 'zod';
import { leaseSchema } from './lease.js';

/*
 * The lease as this pod last wrote it, kept in the state dir (an EmptyDir shared by
 * init-hydrate and state-sync): state-sync starts from it instead of reading the lease
 * again, and renews only when a renewal is due, so a sidecar that starts with nothing to
 * upload sends no request. Knowing the lease is never what makes a write safe: every
 * write of it is conditioned on this ETag, and one that fails reads the lease again
 * (session-owner.ts), so a copy made stale by another pod costs a request, not a byte.
 */

const FILE_NAME = 'lease-held.json';

const heldSchema = z.object({
  etag: z.string().min(1),
  body: leaseSchema,
  // This pod's clock when it wrote the lease: when the next renewal falls due.
  writtenAtMs: z.number(),
});
export type HeldLease = z.infer<typeof heldSchema>;

export async function saveHeldLease(stateDir: string, held: HeldLease): Promise<void> {
  await mkdir(stateDir, { recursive: true });
  const target = path.join(stateDir, FILE_NAME);
  const temp = `${target}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`;
  try {
    await writeFile(temp, JSON.stringify(held));
    await rename(temp, target);
  } catch (error) {
    await rm(temp, { force: true });
    throw error;
  }
}

/** This pod's last write of the lease, or undefined (none, another owner's, unreadable, or from the future). */
export async function loadHeldLease(stateDir: string, uid: string, nowMs = Date.now()): Promise<HeldLease | undefined> {
  let text: string;
  try {
    text = await readFile(path.join(stateDir, FILE_NAME), 'utf8');
  } catch {
    return undefined;
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    return undefined;
  }
  const parsed = heldSchema.safeParse(json);
  if (!parsed.success || parsed.data.body.owner !== uid || parsed.data.writtenAtMs > nowMs) return undefined;
  return parsed.data;
}
