import { randomBytes } from 'node:crypto';
import { redactEndpoint } from '../shared/redact.js';
import { VERSION } from '../shared/version.js';
import { METADATA_KEY, type Metadata } from '../agent/state/metadata.js';
import { deleteKeys, listRemote, probeAccess, readMetadata, writeMetadata, type RemoteTarget } from '../agent/state/remote.js';
import { failureOf, isStoreError } from '../agent/store/store.js';
import { INTEGRATION_SECRET, NON_SECRET_KEYS, STORAGE_MODE_KEY } from '../webhook/config/names.js';
import type { S3Reason } from '../webhook/config/s3-settings.js';
import {
  checkDnsLabel,
  decide,
  loadKubeConfig,
  openStore,
  readProjectSecret,
  runTool,
  say,
  ToolError,
  type KubeOptions,
  type ProjectStore,
} from './project.js';
import { LIST_FIX } from './session-files.js';

type Status = 'ok' | 'warn' | 'FAIL';

interface Report {
  line(status: Status, text: string, fix?: string): void;
  failures: number;
  warnings: number;
}

function report(): Report {
  const state: Report = {
    failures: 0,
    warnings: 0,
    line(status, text, fix) {
      if (status === 'FAIL') state.failures += 1;
      if (status === 'warn') state.warnings += 1;
      say(`${status.padEnd(5)} ${text}`);
      if (fix) say(`      fix: ${fix}`);
    },
  };
  return state;
}

const PROBE_TIMEOUT_MS = 30_000;

const EPHEMERAL_FIX: Partial<Record<S3Reason, (namespace: string) => string>> = {
  'secret-absent': (namespace) =>
    `create ${INTEGRATION_SECRET} in ${namespace} with S3_ENABLED=true, S3_ENDPOINT, S3_BUCKET, S3_ACCESS_KEY and S3_SECRET_KEY`,
  's3-not-configured': (namespace) =>
    `add S3_ENABLED=true, S3_ENDPOINT, S3_BUCKET, S3_ACCESS_KEY and S3_SECRET_KEY to ${INTEGRATION_SECRET} in ${namespace}`,
  's3-disabled': () => 'set S3_ENABLED=true in the project settings to keep session state',
  'storage-mode-shared': () => 'set STORAGE_MODE=custom with the S3_* keys in the project settings',
};

/**
 * `session-storage check NAMESPACE`: would a session pod in NAMESPACE hydrate and sync?
 * The webhook's decision on the namespace's secret, then the agent's own S3 calls on a
 * probe object under NAMESPACE/. Exit 0 only when it would.
 */
export function runCheck(namespace: string, options: KubeOptions): Promise<number> {
  return runTool(async () => {
    checkDnsLabel('namespace', namespace);
    const out = report();
    const secret = await readProjectSecret(loadKubeConfig(options), namespace).catch((error: unknown) => {
      if (!(error instanceof ToolError)) throw error;
      out.line('FAIL', error.message, `your kubeconfig user needs "get" on secrets in ${namespace} (the webhook reads it with its own ServiceAccount)`);
      return undefined;
    });
    if (secret === undefined) return finish(out, namespace);

    if (secret.kind === 'absent') {
      say(`secret ${namespace}/${INTEGRATION_SECRET}: absent`);
    } else {
      // STORAGE_MODE is the platform's choice of storage, written beside the S3 keys.
      const shown = [...NON_SECRET_KEYS, STORAGE_MODE_KEY]
        .filter((key) => secret.values[key] !== undefined)
        .map((key) => `${key}=${key === 'S3_ENDPOINT' ? redactEndpoint(secret.values[key]!) : secret.values[key]}`);
      const credentials = ['S3_ACCESS_KEY', 'S3_SECRET_KEY'].map((key) => `${key} ${secret.values[key]?.trim() ? 'set' : 'missing'}`);
      say(`secret ${namespace}/${INTEGRATION_SECRET}: ${[...shown, ...credentials].join(', ')}`);
    }

    const decision = decide(secret);
    if (decision.kind === 'ephemeral') {
      out.line('FAIL', `webhook: ${decision.warning}`, EPHEMERAL_FIX[decision.reason]?.(namespace) ?? 'see the webhook troubleshooting table');
      return finish(out, namespace);
    }
    if (decision.kind === 'deny') {
      out.line('FAIL', `webhook denies session pods: ${decision.message}`, 'set the named keys of the secret as the troubleshooting table says');
      return finish(out, namespace);
    }
    out.line('ok', 'webhook: session pods get init-hydrate and state-sync (S3 configured)');
    if (secret.kind === 'absent') return finish(out, namespace);

    let store: ProjectStore;
    try {
      store = openStore(secret.values, namespace, 'check', 1);
    } catch (error) {
      if (!(error instanceof ToolError)) throw error;
      out.line('FAIL', error.message, 'fix the named key of the secret');
      return finish(out, namespace);
    }
    try {
      await probe(store, namespace, out);
    } finally {
      store.close();
    }
    return finish(out, namespace);
  });
}

function finish(out: Report, namespace: string): number {
  if (out.failures > 0) {
    say(`result: a session in ${namespace} would NOT hydrate and sync (${out.failures} failed)`);
    return 1;
  }
  const warnings = out.warnings > 0 ? ` (${out.warnings} warning${out.warnings > 1 ? 's' : ''})` : '';
  say(`result: a session in ${namespace} would hydrate and sync${warnings}`);
  return 0;
}

// What each step of the probe shares: the probe object, the report, and how a failed
// step is reported with its fix.
interface ProbeContext {
  target: RemoteTarget;
  namespace: string;
  // s3://BUCKET/PREFIX/metadata.json, the probe object.
  where: string;
  out: Report;
  signal(): AbortSignal;
  fail(what: string, action: string, error: unknown): void;
}

async function probe(store: ProjectStore, namespace: string, out: Report): Promise<void> {
  const { settings } = store;
  // Not a DNS label, so never a session's prefix.
  const target: RemoteTarget = { ...store.target, prefix: `${namespace}/.session-storage-check-${randomBytes(4).toString('hex')}/` };
  const context: ProbeContext = {
    target,
    namespace,
    where: `s3://${target.store.bucket}/${target.prefix}${METADATA_KEY}`,
    out,
    signal: () => AbortSignal.timeout(PROBE_TIMEOUT_MS),
    fail: (what, action, error) => {
      const failure = failureOf(error);
      out.line('FAIL', `${what}: ${failure.kind} (${failure.detail})`, fixFor(failure.kind, error, action, settings.endpoint, `${target.store.bucket}/${namespace}/*`));
    },
  };
  const metadata: Metadata = {
    lastSync: new Date().toISOString(),
    session: target.prefix.split('/')[1]!,
    namespace,
    pathsSynced: 0,
    agentVersion: VERSION,
  };
  // Nothing else can work when the first write does not; the cause is the same.
  if (!(await writeProbe(context, metadata))) return;
  await readBack(context, metadata);
  const listed = await listNamespace(context);
  await readMissing(context, listed);
  await deleteProbe(context);
}

async function writeProbe({ target, where, out, signal, fail }: ProbeContext, metadata: Metadata): Promise<boolean> {
  try {
    await writeMetadata(target, metadata, signal());
    out.line('ok', `write ${where} (s3:PutObject)`);
    return true;
  } catch (error) {
    fail(`write ${where}`, 's3:PutObject', error);
    return false;
  }
}

async function readBack({ target, out, signal, fail }: ProbeContext, metadata: Metadata): Promise<void> {
  try {
    const read = await readMetadata(target, signal());
    if (read.kind === 'found' && read.metadata.lastSync === metadata.lastSync) out.line('ok', 'read it back (s3:GetObject)');
    else out.line('FAIL', `read it back: got ${read.kind === 'found' ? 'another object' : read.kind}`, 'the bucket does not return what was written: check the endpoint is the S3 server itself, not a proxy or cache');
  } catch (error) {
    fail('read it back', 's3:GetObject', error);
  }
}

// Whether the namespace's objects may be listed.
async function listNamespace({ target, namespace, out, signal, fail }: ProbeContext): Promise<boolean> {
  try {
    const listing = await listRemote({ ...target, prefix: `${namespace}/` }, signal());
    if (listing.kind === 'listed') {
      out.line('ok', `list s3://${target.store.bucket}/${namespace}/ (s3:ListBucket)`);
      return true;
    }
    out.line(
      'warn',
      `list s3://${target.store.bucket}/${namespace}/: access denied. Sessions hydrate and sync from the manifest in metadata.json; state written by the platform's own sync (no manifest) cannot be restored, and \`ls\` needs the manifest`,
      LIST_FIX,
    );
  } catch (error) {
    fail(`list s3://${target.store.bucket}/${namespace}/`, 's3:ListBucket', error);
  }
  return false;
}

// A new session's hydrate reads a metadata.json that does not exist yet. Without
// s3:ListBucket, AWS answers 403 instead of 404 and hydrate must fail rather than start
// fresh over state it cannot see: only a server that says "missing" lets it start.
async function readMissing({ target, out, signal, fail }: ProbeContext, listed: boolean): Promise<void> {
  const missingTarget = { ...target, prefix: `${target.prefix}missing/` };
  try {
    const missing = await readMetadata(missingTarget, signal());
    if (missing.kind === 'missing') out.line('ok', 'read a missing object: answered "not found" (a new session starts fresh)');
    else out.line('FAIL', `read a missing object: got ${missing.kind}`, 'the bucket answers for objects that were never written: check the endpoint');
  } catch (error) {
    const failure = failureOf(error);
    if (isStoreError(error, 'access-denied') && !listed) {
      // Hydrate's own test (remote.ts probeAccess): a 403 where these credentials may read
      // what they write means "missing" (AWS hides it from callers without s3:ListBucket),
      // and a new session starts fresh; only a policy that refuses the probe fails it.
      const access = await probeAccess(missingTarget, signal()).catch((probeError: unknown) => ({ kind: 'error' as const, error: probeError }));
      if (access.kind === 'readable') {
        out.line('ok', 'read a missing object: access denied without s3:ListBucket; an object written and read back there shows the 403 means "not found" (a new session starts fresh, as hydrate decides)');
      } else {
        out.line('FAIL', `read a missing object: access denied, and hydrate's probe (write, read back) was refused too: a new session fails to hydrate (${failureOf(access.error).detail})`, LIST_FIX);
      }
    } else if (failure.kind === 'access denied' && !listed) {
      out.line('FAIL', 'read a missing object: access denied, so hydrate of a new session fails (the server hides "not found" from callers without s3:ListBucket)', LIST_FIX);
    } else {
      fail('read a missing object', 's3:GetObject', error);
    }
  }
}

async function deleteProbe({ target, namespace, where, out, signal, fail }: ProbeContext): Promise<void> {
  try {
    const result = await deleteKeys(target, [METADATA_KEY], signal());
    if (result.failed.length === 0) out.line('ok', 'delete the probe object (s3:DeleteObject)');
    else out.line('FAIL', `delete the probe object: refused; ${where} is left behind`, `grant s3:DeleteObject on ${target.store.bucket}/${namespace}/*: sync propagates deletions with it`);
  } catch (error) {
    fail(`delete the probe object (${where} is left behind)`, 's3:DeleteObject', error);
  }
}

function fixFor(kind: string, error: unknown, action: string, endpoint: string, resource: string): string {
  const host = new URL(endpoint).hostname;
  // check runs where the user is; the agent runs in the cluster.
  const inCluster = host.endsWith('.svc') || host.endsWith('.cluster.local') || !host.includes('.')
    ? ` (${host} looks like an in-cluster name: check runs on this machine and may not reach it; run it from a pod, or port-forward)`
    : '';
  switch (kind) {
    case 'connection refused':
      return `nothing listens at S3_ENDPOINT ${endpoint} (wrong port, service down, NetworkPolicy)${inCluster}`;
    case 'endpoint not found':
      return `DNS could not resolve the host of S3_ENDPOINT ${endpoint}${inCluster}`;
    case 'timed out':
      return `packets to S3_ENDPOINT ${endpoint} are dropped or the server hangs (firewall, NetworkPolicy)${inCluster}`;
    case 'bucket not found':
      return 'S3_BUCKET does not exist at that endpoint; the agent never creates buckets: create it';
    case 'access denied':
      return isStoreError(error, 'credentials')
        ? 'the server does not accept S3_ACCESS_KEY/S3_SECRET_KEY: set the right keys in the secret'
        : `wrong S3_ACCESS_KEY/S3_SECRET_KEY, or the policy lacks ${action} on ${resource}`;
    case 'server error':
      return 'the S3 server failed the request: check its health and logs';
    default:
      return 'see the agent troubleshooting section of the README';
  }
}
