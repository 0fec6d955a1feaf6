import { spawn, type ChildProcess } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { V1Container, V1Pod } from '@kubernetes/client-node';
import { ROOT } from './minio.js';

// Runs a container of a pod as a local process, the way the kubelet would: its args after
// the image's entrypoint (the CLI), its env with secretKeyRef and fieldRef resolved, and
// each volume mounted at a folder of ours. The e2e tier resolves secrets from the API
// server, `npm run demo` from its secret manifest.

/** Local folders standing in for the pod's volumes; shared by the containers of one pod. */
export type PodVolumes = Map<string, string>;

/** The value of `key` in the pod namespace's Secret `name`; undefined when the secret has no such key. */
export type SecretValue = (name: string, key: string) => Promise<string | undefined>;

export async function podVolumes(pod: V1Pod): Promise<PodVolumes> {
  const volumes: PodVolumes = new Map();
  for (const volume of pod.spec?.volumes ?? []) {
    volumes.set(volume.name, await mkdtemp(join(tmpdir(), `pod-${volume.name}-`)));
  }
  return volumes;
}

function mountMap(container: V1Container, volumes: PodVolumes): Array<[string, string]> {
  return (container.volumeMounts ?? []).map((mount) => {
    const local = volumes.get(mount.name);
    if (!local) throw new Error(`container ${container.name} mounts unknown volume ${mount.name}`);
    return [mount.mountPath, mount.subPath ? join(local, mount.subPath) : local];
  });
}

// A pod the API server never stored (the offline demo) has no UID yet; the kubelet's
// always does. One made up per pod object stands in for it.
const madeUpUids = new WeakMap<V1Pod, string>();

function uidOf(pod: V1Pod): string {
  const uid = pod.metadata?.uid ?? madeUpUids.get(pod) ?? randomUUID();
  madeUpUids.set(pod, uid);
  return uid;
}

function fieldValue(pod: V1Pod, fieldPath: string): string {
  const fields: Record<string, string | undefined> = {
    'metadata.namespace': pod.metadata?.namespace,
    // generateName alone until the API server names the pod: its name then starts so.
    'metadata.name': pod.metadata?.name ?? (pod.metadata?.generateName === undefined ? undefined : `${pod.metadata.generateName}${uidOf(pod).slice(0, 5)}`),
    'metadata.uid': uidOf(pod),
    'spec.serviceAccountName': pod.spec?.serviceAccountName,
  };
  const value = fields[fieldPath];
  if (value === undefined) throw new Error(`unsupported fieldRef ${fieldPath}`);
  return value;
}

export async function resolveEnv(
  pod: V1Pod,
  container: V1Container,
  volumes: PodVolumes,
  secretValue: SecretValue,
): Promise<Record<string, string>> {
  const mounts = mountMap(container, volumes).sort((a, b) => b[0].length - a[0].length);
  const env: Record<string, string> = {};
  for (const variable of container.env ?? []) {
    let value: string;
    const from = variable.valueFrom;
    if (from?.secretKeyRef) {
      const { name = '', key, optional } = from.secretKeyRef;
      const found = await secretValue(name, key);
      // As the kubelet does: an optional key the secret lacks leaves the variable unset,
      // a required one keeps the container from starting.
      if (found === undefined && optional === true) continue;
      if (found === undefined) throw new Error(`secret key ${key} missing in ${name}`);
      value = found;
    } else if (from?.fieldRef) {
      value = fieldValue(pod, from.fieldRef.fieldPath);
    } else if (from) {
      throw new Error(`unsupported valueFrom on ${variable.name}`);
    } else {
      value = variable.value ?? '';
    }
    // A path inside a mount becomes the same path inside the folder standing in for it.
    const mount = mounts.find(([path]) => value === path || value.startsWith(`${path}/`));
    env[variable.name] = mount ? mount[1] + value.slice(mount[0].length) : value;
  }
  return env;
}

export interface ContainerProcess {
  child: ChildProcess;
  output(): string;
  exited: Promise<number>;
}

export interface RunOptions {
  onOutput?: (text: string) => void;
  /** environment of the image's runtime rather than the pod's (the image is not this machine) */
  runtimeEnv?: Record<string, string>;
}

export async function runContainer(
  pod: V1Pod,
  container: V1Container,
  volumes: PodVolumes,
  secretValue: SecretValue,
  options: RunOptions = {},
): Promise<ContainerProcess> {
  if (container.command) throw new Error(`${container.name} overrides the image entrypoint`);
  const env = await resolveEnv(pod, container, volumes, secretValue);
  const { onOutput, runtimeEnv = {} } = options;
  const child = spawn(process.execPath, [join(ROOT, 'dist/cli.js'), ...(container.args ?? [])], {
    env: { PATH: process.env.PATH ?? '', ...runtimeEnv, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  const collect = (d: Buffer) => {
    output += d.toString();
    onOutput?.(d.toString());
  };
  child.stdout?.on('data', collect);
  child.stderr?.on('data', collect);
  const exited = new Promise<number>((done) => child.on('close', (code, signal) => done(code ?? (signal ? 128 : 1))));
  return { child, output: () => output, exited };
}
