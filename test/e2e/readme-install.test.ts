import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join, relative } from 'node:path';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { parse } from 'yaml';
import { kubectlOk, ROOT } from '../support/cluster-client.js';
import { lockCluster } from '../support/cluster-lock.js';

// The README's Install section, run as written against a real API server: every shell
// command of its code blocks, and its overlay. Only `rollout status` is left out: this API
// server has no nodes, so no pod of the Deployment ever runs.

const cluster = inject('cluster');
const README = readFileSync(join(ROOT, 'README.md'), 'utf8');
const INSTALL = README.slice(README.indexOf('<!-- section:install -->'), README.indexOf('<!-- /section:install -->'));
const NOT_HERE = /rollout status/;

function blocks(language: string): string[] {
  return [...INSTALL.matchAll(new RegExp('```' + language + '\\n([\\s\\S]*?)```', 'g'))].map((match) => match[1]!);
}

/** The commands of a shell block: comments and empty lines dropped. */
function commands(block: string): string[] {
  return block
    .split('\n')
    .map((line) => line.replace(/\s+#.*$/, '').trim())
    .filter((line) => line !== '' && !line.startsWith('#'));
}

// kubectl keeps its discovery cache under $HOME/.kube: a HOME of its own keeps it out of
// the checkout the commands run in.
const HOME = mkdtempSync(join(tmpdir(), 'readme-home-'));

function sh(command: string, env: Record<string, string> = {}): Promise<{ code: number | null; output: string }> {
  return new Promise((resolve) => {
    const child = spawn('bash', ['-euo', 'pipefail', '-c', command], {
      cwd: ROOT,
      env: { PATH: `${dirname(cluster.kubectl)}:${process.env.PATH ?? ''}`, KUBECONFIG: cluster.kubeconfigPath, HOME, ...env },
    });
    let output = '';
    child.stdout.on('data', (chunk: Buffer) => (output += chunk.toString()));
    child.stderr.on('data', (chunk: Buffer) => (output += chunk.toString()));
    child.on('close', (code) => resolve({ code, output }));
  });
}

describe("the README's Install section against a real API server", () => {
  let unlock: (() => Promise<void>) | undefined;
  const namespace = `readme-optin-${process.pid}`;

  beforeAll(async () => {
    unlock = await lockCluster(cluster);
  });

  afterAll(async () => {
    await kubectlOk(cluster, ['delete', 'namespace', namespace, '--ignore-not-found', '--wait=false']).catch(() => undefined);
    await unlock?.();
    rmSync(HOME, { recursive: true, force: true });
  });

  it('has the blocks this test runs', () => {
    const all = blocks('sh').flatMap(commands);
    expect(all).toContain('kubectl apply -k manifests/');
    expect(all.some((command) => command.startsWith('kubectl annotate namespace NS ambient-code.io/session-storage-enabled-at='))).toBe(true);
    expect(blocks('yaml').some((block) => block.includes('newName:'))).toBe(true);
  });

  it('runs every command of the install block, in order', async () => {
    const [install] = blocks('sh');
    for (const command of commands(install!)) {
      if (NOT_HERE.test(command)) continue;
      const result = await sh(command);
      expect(result.code, `${command}\n${result.output}`).toBe(0);
    }
    const secret = await kubectlOk(cluster, ['get', 'secret', 'ambient-non-vertex-integrations', '-n', 'project-a', '-o', 'name']);
    expect(secret.trim()).toBe('secret/ambient-non-vertex-integrations');
  });

  it("opts an existing namespace in with the two commands, the opt-in time first", async () => {
    await kubectlOk(cluster, ['create', 'namespace', namespace]);
    const optIn = blocks('sh').find((block) => block.includes('session-storage-enabled-at'))!;
    for (const command of commands(optIn)) {
      const result = await sh(command.replaceAll(' NS ', ` ${namespace} `));
      expect(result.code, `${command}\n${result.output}`).toBe(0);
    }
    const ns = JSON.parse(await kubectlOk(cluster, ['get', 'namespace', namespace, '-o', 'json'])) as {
      metadata: { labels: Record<string, string>; annotations: Record<string, string> };
    };
    expect(ns.metadata.labels['ambient-code.io/session-storage']).toBe('enabled');
    const at = Date.parse(ns.metadata.annotations['ambient-code.io/session-storage-enabled-at']!);
    expect(Math.abs(at - Date.now())).toBeLessThan(120_000);
  });

  it("the image overlay, as written, applies and moves both images", async () => {
    const yaml = blocks('yaml').find((block) => block.includes('newName:'))!;
    const overlay = await mkdtemp(join(tmpdir(), 'my-overlay-'));
    try {
      const kustomization = parse(yaml) as { resources: string[]; images: Array<{ newName: string; newTag: string }> };
      // The README's path is relative to a folder beside manifests/.
      kustomization.resources = [relative(overlay, join(ROOT, 'manifests'))];
      await writeFile(join(overlay, 'kustomization.yaml'), JSON.stringify(kustomization));
      const result = await sh(`kubectl apply --dry-run=server -k ${overlay} -o json`);
      expect(result.code, result.output).toBe(0);
      const image = `${kustomization.images[0]!.newName}:${kustomization.images[0]!.newTag}`;
      expect(result.output).toContain(`"image": "${image}"`);
      expect(result.output).toContain(`"ambient-code.io/agent-image": "${image}"`);
      expect(result.output).toContain('"value": "ambient-session-storage"');
    } finally {
      await rm(overlay, { recursive: true, force: true });
    }
  });
});
