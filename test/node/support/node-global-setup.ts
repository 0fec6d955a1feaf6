import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { promisify } from 'node:util';
import type {} from 'vitest';
import type { TestProject } from 'vitest/node';
import type { NodeTier } from './node-tier.js';
import { installWebhook } from './webhook.js';

declare module 'vitest' {
  export interface ProvidedContext {
    node: NodeTier;
  }
}

const ROOT = resolve(import.meta.dirname, '../../..');
const run = promisify(execFile);

async function script(args: string[], env: NodeJS.ProcessEnv = process.env): Promise<string> {
  try {
    const { stdout } = await run(args[0]!, args.slice(1), { cwd: ROOT, env, maxBuffer: 64 * 2 ** 20 });
    return stdout;
  } catch (error) {
    const e = error as { stdout?: string; stderr?: string; message: string };
    throw new Error(`${args.join(' ')} failed: ${e.message}\n${e.stdout ?? ''}${e.stderr ?? ''}`);
  }
}

// The tier's node: the product's image built without an engine, then one kubelet with
// containerd and runc, the control plane with a scheduler and a controller-manager, and
// MinIO on the node's bridge address (scripts/node-tier.sh). A missing binary or a host
// that cannot run pods fails the tier: nothing is skipped. Then the webhook is installed
// from manifests/ as its Deployment and runs in pods of that image.
export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  const state = await mkdtemp(join(tmpdir(), 'sst-node-'));
  const image = join(state, '..', `${state.split('/').pop()}-image.tar`);
  const down = async () => {
    await script(['bash', 'scripts/node-tier.sh', 'down', state]);
    await rm(image, { force: true });
  };
  try {
    const started = Date.now();
    await script([process.execPath, 'scripts/build-image.mjs', '--out', image]);
    const envFile = (await script(['bash', 'scripts/node-tier.sh', 'up', state], { ...process.env, NODE_TIER_IMAGE: image })).trim();
    const env = Object.fromEntries(
      (await readFile(envFile, 'utf8')).split('\n').flatMap((line) => {
        const match = /^export (\w+)=(.*)$/.exec(line);
        return match ? [[match[1]!, match[2]!]] : [];
      }),
    ) as Record<string, string>;
    const node: NodeTier = {
      stateDir: state,
      kubeconfigPath: env.KUBECONFIG!,
      server: env.API_SERVER!,
      serverCaPath: join(state, 'pki/ca.crt'),
      // the one build-control-plane.sh chose: its own build, or the system's with kustomize
      kubectl: existsSync(join(ROOT, '.cache/bin/kubectl')) ? join(ROOT, '.cache/bin/kubectl') : 'kubectl',
      dataDir: state,
      nodeName: env.NODE_NAME!,
      nodeIp: env.NODE_IP!,
      runtimeEndpoint: env.CONTAINER_RUNTIME_ENDPOINT!,
      imageTar: image,
      image: `ghcr.io/ambient-code/ambient-session-storage:${JSON.parse(await readFile(join(ROOT, 'package.json'), 'utf8')).version}`,
      minio: {
        endpoint: env.MINIO_ENDPOINT!,
        region: 'us-east-1',
        accessKey: env.MINIO_ROOT_USER!,
        secretKey: env.MINIO_ROOT_PASSWORD!,
        binPath: join(ROOT, '.cache/bin/minio'),
      },
    };
    await installWebhook(node);
    console.log(`node tier up in ${((Date.now() - started) / 1000).toFixed(1)}s (${state})`);
    project.provide('node', node);
  } catch (error) {
    if (process.env.NODE_TIER_KEEP !== '1') await down();
    throw error;
  }
  return async () => {
    if (process.env.NODE_TIER_KEEP === '1') {
      console.log(`NODE_TIER_KEEP=1: the node tier is still up: . ${state}/env; bash scripts/node-tier.sh down ${state}`);
      return;
    }
    await down();
  };
}
