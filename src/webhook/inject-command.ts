import { readFile } from 'node:fs/promises';
import type { V1Pod, V1PodTemplateSpec } from '@kubernetes/client-node';
import { parseAllDocuments, stringify } from 'yaml';
import { admitPod } from './admission.js';
import { NO_CLAIMS } from './claim-source.js';
import { ConfigError, loadConfig } from './config.js';
import { podShapeProblem } from './pod-shape.js';
import {
  ManifestError,
  ManifestSecretSource,
  parseSecretManifests,
  type SecretManifest,
} from './secret-source.js';

export interface InjectOptions {
  filename: string;
  secret?: string;
  namespace?: string;
  output: string;
}

class InputError extends Error {}

interface Workload {
  kind?: string;
  metadata?: { namespace?: string };
  spec?: { template?: V1PodTemplateSpec; jobTemplate?: { spec?: { template?: V1PodTemplateSpec } } };
}

/**
 * `session-storage inject`: the webhook's decision for one manifest, offline.
 * Exit 0 with the mutated manifest, 1 on a denial, 2 when the input is unusable.
 */
export async function runInject(options: InjectOptions): Promise<number> {
  try {
    return await inject(options);
  } catch (error) {
    if (error instanceof InputError || error instanceof ManifestError || error instanceof ConfigError) {
      process.stderr.write(`error: ${error.message}\n`);
      return 2;
    }
    throw error;
  }
}

async function inject(options: InjectOptions): Promise<number> {
  if (options.output !== 'yaml' && options.output !== 'json') {
    throw new InputError(`unknown output format "${options.output}": use yaml or json`);
  }
  const config = loadConfig();
  const manifest = parseManifest(await readInput(options.filename), origin(options.filename));
  const secrets = options.secret === undefined ? [] : await readSecret(options.secret);
  const secretNamespace = secrets[0]?.metadata?.namespace;

  const target = podOf(manifest);
  const shapeProblem = podShapeProblem(target.pod);
  if (shapeProblem !== undefined) throw new InputError(`${origin(options.filename)}: not a pod the webhook can read: ${shapeProblem}`);
  const namespace =
    options.namespace ?? target.pod.metadata?.namespace ?? manifest.metadata?.namespace ?? secretNamespace ?? 'default';
  if (secretNamespace !== undefined && secretNamespace !== namespace) {
    throw new InputError(
      `the secret is in namespace "${secretNamespace}" but the pod is in "${namespace}": a pod only sees its own namespace's secret`,
    );
  }

  const result = await admitPod(target.pod, namespace, {
    config: config.mutation,
    policy: config.policy,
    secrets: new ManifestSecretSource(secrets),
    claims: NO_CLAIMS,
  });
  for (const warning of result.warnings) process.stderr.write(`warning: ${warning}\n`);
  if (result.outcome === 'denied') {
    process.stderr.write(`denied: ${result.message}\n`);
    return 1;
  }
  target.replace(result.pod);
  process.stdout.write(options.output === 'json' ? `${JSON.stringify(manifest, null, 2)}\n` : stringify(manifest));
  return 0;
}

function origin(filename: string): string {
  return filename === '-' ? 'stdin' : filename;
}

async function readInput(filename: string): Promise<string> {
  try {
    return filename === '-' ? await readStdin() : await readFile(filename, 'utf8');
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    throw new InputError(`cannot read ${filename === '-' ? 'stdin' : filename}: ${code ?? (error as Error).message}`);
  }
}

async function readStdin(): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of process.stdin) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks).toString('utf8');
}

async function readSecret(path: string): Promise<SecretManifest[]> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (error) {
    throw new InputError(`cannot read ${path}: ${(error as NodeJS.ErrnoException).code ?? (error as Error).message}`);
  }
  const secrets = parseSecretManifests(text, path);
  if (secrets.length !== 1) throw new InputError(`${path}: expected exactly one Secret manifest`);
  return secrets;
}

function parseManifest(text: string, origin: string): V1Pod & Workload {
  const documents = parseAllDocuments(text);
  if (documents.length !== 1) {
    throw new InputError(`${origin}: expected exactly one manifest`);
  }
  const document = documents[0]!;
  if (document.errors.length > 0) {
    throw new InputError(`${origin}: not valid YAML or JSON: ${document.errors[0]?.message.split('\n')[0]}`);
  }
  const value: unknown = document.toJS();
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw new InputError(`${origin}: expected a Pod manifest`);
  }
  return value as V1Pod & Workload;
}

const TEMPLATED = new Set(['Deployment', 'StatefulSet', 'DaemonSet', 'ReplicaSet', 'Job']);

function podOf(manifest: V1Pod & Workload): { pod: V1Pod; replace: (pod: V1Pod) => void } {
  if (manifest.kind === 'Pod') {
    return {
      pod: manifest,
      replace: (pod) => Object.assign(manifest, pod),
    };
  }
  const holder = TEMPLATED.has(manifest.kind ?? '')
    ? manifest.spec
    : manifest.kind === 'CronJob'
      ? manifest.spec?.jobTemplate?.spec
      : undefined;
  const template = holder?.template;
  if (holder === undefined || typeof template !== 'object' || template === null) {
    throw new InputError(`expected a Pod (or a Deployment, StatefulSet, DaemonSet, ReplicaSet, Job or CronJob), got kind "${manifest.kind ?? ''}"`);
  }
  return {
    pod: { apiVersion: 'v1', kind: 'Pod', metadata: template.metadata ?? {}, spec: template.spec },
    replace: (pod) => {
      holder.template = { metadata: pod.metadata, spec: pod.spec };
    },
  };
}
