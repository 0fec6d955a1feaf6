import { readFile } from 'node:fs/promises';
import type { KubeConfig, V1Pod, V1PodTemplateSpec } from '@kubernetes/client-node';
import { parseAllDocuments, stringify } from 'yaml';
import { admitPod } from '../webhook/admission/admission.js';
import { NO_CLAIMS } from '../webhook/lookups/claim-source.js';
import { ConfigError, loadConfig } from '../webhook/config/config.js';
import { podShapeProblem } from '../webhook/admission/pod-shape.js';
import {
  ManifestError,
  ManifestSecretSource,
  parseSecretManifests,
  type SecretManifest,
  type SecretSource,
} from '../webhook/lookups/secret-source.js';
import { summarizeSecret, type SecretSummary } from '../webhook/config/secret-summary.js';

export interface InjectOptions {
  filename: string;
  secret?: string;
  secretFromCluster?: boolean;
  kubeconfig?: string;
  context?: string;
  namespace?: string;
  output: string;
}

class InputError extends Error {}

interface Workload {
  kind?: string;
  metadata?: { name?: string; namespace?: string; generateName?: string };
  spec?: { template?: V1PodTemplateSpec; jobTemplate?: { spec?: { template?: V1PodTemplateSpec } } };
  items?: unknown[];
}

type Manifest = V1Pod & Workload;

/**
 * `session-storage inject`: the webhook's decision for every pod and pod template of a
 * manifest stream, offline, like `istioctl kube-inject`: other objects pass through.
 * Exit 0 with the manifests, 1 when a pod is denied, 2 when the input or the command line
 * is unusable.
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
  if (options.secret !== undefined && options.secretFromCluster) {
    throw new InputError('--secret and --secret-from-cluster are exclusive: the secret comes from a file or from the cluster');
  }
  const config = loadConfig();
  const manifests = parseManifests(await readInput(options.filename), origin(options.filename));
  const secrets = options.secret === undefined ? [] : await readSecret(options.secret);
  const secretNamespace = secrets[0]?.metadata?.namespace;
  const source: SecretSource = options.secretFromCluster ? await clusterSecretSource(options) : new ManifestSecretSource(secrets);

  const targets = manifests.flatMap((manifest) => podsOf(manifest));
  // Checked for every pod before any decision: a stream is injected whole or not at all.
  for (const target of targets) {
    const shapeProblem = podShapeProblem(target.pod);
    if (shapeProblem !== undefined) {
      const which = targets.length > 1 ? ` ${describe(target.holder)}` : '';
      throw new InputError(`${origin(options.filename)}:${which} not a pod the webhook can read: ${shapeProblem}`);
    }
  }
  if (targets.length === 0) process.stderr.write('warning: no Pod or pod template in the input: nothing injected\n');
  let denied = 0;
  for (const target of targets) {
    const namespace =
      options.namespace ?? target.pod.metadata?.namespace ?? target.holder.metadata?.namespace ?? secretNamespace ?? 'default';
    if (secretNamespace !== undefined && secretNamespace !== namespace) {
      throw new InputError(
        `the secret is in namespace "${secretNamespace}" but the pod is in "${namespace}": a pod only sees its own namespace's secret`,
      );
    }
    const result = await admitPod(target.pod, namespace, {
      config: config.mutation,
      policy: config.policy,
      secrets: source,
      // Reading PVCs and the namespace would need rights a project member seldom has.
      claims: NO_CLAIMS,
    });
    const label = targets.length > 1 ? `${describe(target.holder)}: ` : '';
    for (const warning of result.warnings) process.stderr.write(`warning: ${label}${warning}\n`);
    if (result.outcome === 'denied') {
      process.stderr.write(`denied: ${label}${result.message}\n`);
      denied += 1;
      continue;
    }
    target.replace(result.pod);
  }
  // Half a stream applied would start some of the pods without the storage they need.
  if (denied > 0) return 1;
  if (options.output === 'json') {
    const value = manifests.length === 1 ? manifests[0] : { apiVersion: 'v1', kind: 'List', items: manifests };
    process.stdout.write(`${JSON.stringify(value, null, 2)}\n`);
  } else {
    process.stdout.write(manifests.map((manifest) => stringify(manifest)).join('---\n'));
  }
  return 0;
}

function origin(filename: string): string {
  return filename === '-' ? 'stdin' : filename;
}

function describe(manifest: Manifest): string {
  const name = manifest.metadata?.name ?? manifest.metadata?.generateName ?? '';
  return `${manifest.kind ?? 'object'}/${name}`;
}

/**
 * The integration secret read live through the user's kubeconfig, one GET per namespace.
 * A read error is the webhook's "failed to read project secret" row. The Kubernetes client
 * is loaded only for this option.
 */
async function clusterSecretSource(options: InjectOptions): Promise<SecretSource> {
  const { loadKubeConfig, readIntegrationSecret, UsageError } = await import('./kube.js');
  let kubeConfig: KubeConfig;
  try {
    kubeConfig = loadKubeConfig({ kubeconfig: options.kubeconfig, context: options.context });
  } catch (error) {
    throw error instanceof UsageError ? new InputError(error.message) : error;
  }
  const cache = new Map<string, Promise<SecretSummary>>();
  return {
    get(namespace) {
      let summary = cache.get(namespace);
      if (!summary) {
        summary = readIntegrationSecret(kubeConfig, namespace).then((read) =>
          read.kind === 'found' ? summarizeSecret(read.secret) : read,
        );
        cache.set(namespace, summary);
      }
      return summary;
    },
    ready: () => true,
    close: () => undefined,
  };
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

// Every document of a YAML stream (or one JSON object); empty documents are dropped.
function parseManifests(text: string, origin: string): Manifest[] {
  const manifests: Manifest[] = [];
  for (const document of parseAllDocuments(text)) {
    if (document.errors.length > 0) {
      throw new InputError(`${origin}: not valid YAML or JSON: ${document.errors[0]?.message.split('\n')[0]}`);
    }
    const value: unknown = document.toJS();
    if (value === null || value === undefined) continue;
    if (typeof value !== 'object' || Array.isArray(value)) {
      throw new InputError(`${origin}: expected Kubernetes manifests, got a ${Array.isArray(value) ? 'list' : typeof value}`);
    }
    manifests.push(value as Manifest);
  }
  if (manifests.length === 0) throw new InputError(`${origin}: no manifest in the input`);
  return manifests;
}

const TEMPLATED = new Set(['Deployment', 'StatefulSet', 'DaemonSet', 'ReplicaSet', 'Job']);

interface Target {
  pod: V1Pod;
  /** the manifest holding the pod (the pod itself, or its workload) */
  holder: Manifest;
  replace: (pod: V1Pod) => void;
}

// The pods a manifest describes: itself, its pod template, or those of a List's items.
// Kinds that hold no pod pass through unchanged.
function podsOf(manifest: Manifest): Target[] {
  if (manifest.kind === 'List' && Array.isArray(manifest.items)) {
    return manifest.items.flatMap((item) => (typeof item === 'object' && item !== null ? podsOf(item as Manifest) : []));
  }
  if (manifest.kind === 'Pod') {
    return [{ pod: manifest, holder: manifest, replace: (pod) => Object.assign(manifest, pod) }];
  }
  const cronJob = manifest.kind === 'CronJob';
  if (!cronJob && !TEMPLATED.has(manifest.kind ?? '')) return [];
  const holder = cronJob ? manifest.spec?.jobTemplate?.spec : manifest.spec;
  const template = holder?.template;
  // A workload that cannot carry its pod would be passed through uninjected: refuse it.
  if (holder === undefined || typeof template !== 'object' || template === null) {
    throw new InputError(`${describe(manifest)} has no pod template (${cronJob ? 'spec.jobTemplate.spec.template' : 'spec.template'})`);
  }
  return [
    {
      pod: { apiVersion: 'v1', kind: 'Pod', metadata: template.metadata ?? {}, spec: template.spec },
      holder: manifest,
      replace: (pod) => {
        holder.template = { metadata: pod.metadata, spec: pod.spec };
      },
    },
  ];
}
