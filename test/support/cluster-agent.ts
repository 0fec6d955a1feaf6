import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { V1Container, V1Pod } from '@kubernetes/client-node';
import type { Api } from './cluster-client.js';
import { ROOT } from './cluster-client.js';

// Runs an injected container of a stored pod as a local process, the way the kubelet
// would: its args after the image's entrypoint (the CLI), its env with secretKeyRef and
// fieldRef resolved from the API server, and each volume mounted at a folder of ours.

/** Local folders standing in for the pod's volumes; shared by the containers of one pod. */
export type PodVolumes = Map<string, string>;

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

function fieldValue(pod: V1Pod, fieldPath: string): string {
  const fields: Record<string, string | undefined> = {
    'metadata.namespace': pod.metadata?.namespace,
    'metadata.name': pod.metadata?.name,
    'metadata.uid': pod.metadata?.uid,
    'spec.serviceAccountName': pod.spec?.serviceAccountName,
  };
  const value = fields[fieldPath];
  if (value === undefined) throw new Error(`unsupported fieldRef ${fieldPath}`);
  return value;
}

async function resolveEnv(
  api: Api,
  pod: V1Pod,
  container: V1Container,
  volumes: PodVolumes,
): Promise<Record<string, string>> {
  const namespace = pod.metadata?.namespace ?? 'default';
  const mounts = mountMap(container, volumes).sort((a, b) => b[0].length - a[0].length);
  const env: Record<string, string> = {};
  for (const variable of container.env ?? []) {
    let value: string;
    const from = variable.valueFrom;
    if (from?.secretKeyRef) {
      const secret = await api.core.readNamespacedSecret({ name: from.secretKeyRef.name ?? '', namespace });
      const encoded = secret.data?.[from.secretKeyRef.key];
      if (encoded === undefined) throw new Error(`secret key ${from.secretKeyRef.key} missing for ${variable.name}`);
      value = Buffer.from(encoded, 'base64').toString('utf8');
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

export interface AgentProcess {
  child: ChildProcess;
  output(): string;
  exited: Promise<number>;
}

export async function runContainer(
  api: Api,
  pod: V1Pod,
  container: V1Container,
  volumes: PodVolumes,
): Promise<AgentProcess> {
  if (container.command) throw new Error(`${container.name} overrides the image entrypoint`);
  const env = await resolveEnv(api, pod, container, volumes);
  const child = spawn(process.execPath, [join(ROOT, 'dist/cli.js'), ...(container.args ?? [])], {
    env: { PATH: process.env.PATH ?? '', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  child.stdout?.on('data', (d: Buffer) => (output += d.toString()));
  child.stderr?.on('data', (d: Buffer) => (output += d.toString()));
  const exited = new Promise<number>((done) => child.on('close', (code, signal) => done(code ?? (signal ? 128 : 1))));
  return { child, output: () => output, exited };
}
