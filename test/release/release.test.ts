import { execFile } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';
import { parseAllDocuments } from 'yaml';
import { agentImageOf, type DeploymentLike } from '../support/agent-image.js';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const ACTIONLINT = path.join(ROOT, '.cache/bin/actionlint');
const read = (file: string) => readFileSync(path.join(ROOT, file), 'utf8');
const run = promisify(execFile);
// The kubectl the e2e tier uses: built into .cache/bin/ when the machine has none.
const KUBECTL = existsSync(path.join(ROOT, '.cache/bin/kubectl')) ? path.join(ROOT, '.cache/bin/kubectl') : 'kubectl';

type Rendered = DeploymentLike & { kind: string };

async function images(dir: string): Promise<{ webhook: string | undefined; agent: string | undefined; all: string }> {
  const { stdout } = await run(KUBECTL, ['kustomize', dir]);
  const deployment = parseAllDocuments(stdout)
    .map((doc) => doc.toJS() as Rendered)
    .find((doc) => doc.kind === 'Deployment');
  const container = deployment?.spec?.template?.spec?.containers?.[0];
  return {
    webhook: container?.image,
    agent: agentImageOf(deployment),
    all: stdout,
  };
}

describe('the release workflow', () => {
  // No container engine or GitHub runner exists here: actionlint (built by npm run deps)
  // is what checks the workflow's syntax, expressions, action inputs and shell steps.
  it('passes actionlint', async () => {
    expect(existsSync(ACTIONLINT), `${ACTIONLINT} is missing: run npm run deps`).toBe(true);
    const result = await promisify(execFile)(ACTIONLINT, ['-color=false', '.github/workflows/release.yml'], { cwd: ROOT }).then(
      () => ({ code: 0, output: '' }),
      (error: { code?: number; stdout?: string; stderr?: string }) => ({ code: error.code, output: `${error.stdout}${error.stderr}` }),
    );
    expect(result.output).toBe('');
    expect(result.code).toBe(0);
  });

  it('refuses a tag that is not the package version and signs what it pushed', () => {
    const workflow = read('.github/workflows/release.yml');
    expect(workflow).toContain(`require("./package.json").version`);
    expect(workflow).toMatch(/cosign sign --yes "\$\{IMAGE\}@\$\{DIGEST\}"/);
    expect(workflow).toMatch(/sbom: true/);
    expect(workflow).toMatch(/provenance: mode=max/);
  });
});

describe('what the release pushes', () => {
  interface Step { name?: string; run?: string }
  const steps = (parseAllDocuments(read('.github/workflows/release.yml'))[0]?.toJS() as { jobs: Record<string, { steps: Step[] }> }).jobs
    .image!.steps;
  const script = steps.find((step) => step.name === 'Image name from the manifests')?.run ?? '';

  async function imageStep(version: string): Promise<{ code: number; output: string; stderr: string }> {
    const dir = await mkdtemp(path.join(tmpdir(), 'release-'));
    const output = path.join(dir, 'output');
    await writeFile(output, '');
    try {
      const result = await run('bash', ['-eo', 'pipefail', '-c', script], { cwd: ROOT, env: { ...process.env, VERSION: version, GITHUB_OUTPUT: output } }).then(
        (r) => ({ code: 0, stderr: r.stderr }),
        (error: { code?: number; stderr?: string }) => ({ code: error.code ?? 1, stderr: error.stderr ?? '' }),
      );
      return { ...result, output: readFileSync(output, 'utf8') };
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  }

  it('pushes the image name the manifests name, under the tag they name', async () => {
    const version = (JSON.parse(read('package.json')) as { version: string }).version;
    const base = await images(path.join(ROOT, 'manifests/base'));
    const step = await imageStep(version);
    expect(step.code).toBe(0);
    expect(`${step.output.trim().replace(/^image=/, '')}:${version}`).toBe(base.webhook);
    expect(read('.github/workflows/release.yml')).toContain('tags: ${{ steps.name.outputs.image }}:${{ steps.version.outputs.version }}');
  });

  it('refuses to release a version the manifests do not name', async () => {
    const step = await imageStep('9.9.9');
    expect(step.code).not.toBe(0);
    expect(step.stderr).toContain('not the version 9.9.9');
  });
});

describe('one version', () => {
  const version = (JSON.parse(read('package.json')) as { version: string }).version;

  it('the kustomize image tag and the injected agent image are package.json version', () => {
    const kustomization = parseAllDocuments(read('manifests/base/kustomization.yaml'))[0]?.toJS() as {
      images: Array<{ newTag: string }>;
    };
    expect(kustomization.images.map((image) => image.newTag)).toEqual([version]);
    expect(read('manifests/base/deployment.yaml')).not.toMatch(/ambient-session-storage:(?!\$)[0-9]/);
  });

  it('the injected agent image is the webhook image, also where an overlay mirrors or re-tags it', async () => {
    const base = await images(path.join(ROOT, 'manifests/base'));
    expect(base.webhook).toBe(`ghcr.io/ambient-code/ambient-session-storage:${version}`);
    expect(base.agent).toBe(base.webhook);
    // Only the image values change: the configuration named like the image stays.
    expect(base.all).toContain('value: ambient-session-storage\n');

    const overlay = await mkdtemp(path.join(tmpdir(), 'overlay-'));
    try {
      await writeFile(
        path.join(overlay, 'kustomization.yaml'),
        [
          'resources:',
          `  - ${path.relative(overlay, path.join(ROOT, 'manifests/base'))}`,
          'images:',
          '  - name: ghcr.io/ambient-code/ambient-session-storage',
          '    newName: registry.example.com/mirror/session-storage',
          '    newTag: 9.9.9',
          '',
        ].join('\n'),
      );
      const mirrored = await images(overlay);
      expect(mirrored.webhook).toBe('registry.example.com/mirror/session-storage:9.9.9');
      expect(mirrored.agent).toBe(mirrored.webhook);
    } finally {
      await rm(overlay, { recursive: true, force: true });
    }
  });

  it('the Helm chart version and appVersion are package.json version', () => {
    const chart = parseAllDocuments(read('manifests/helm/session-storage/Chart.yaml'))[0]?.toJS() as { version: string; appVersion: string };
    expect(chart).toMatchObject({ version, appVersion: version });
  });

  it('the CHANGELOG has an entry for it', () => {
    expect(read('CHANGELOG.md')).toMatch(new RegExp(`^## \\[${version.replace(/\./g, '\\.')}\\]`, 'm'));
  });

  it('the Dockerfile pins every base image by digest and labels the image', () => {
    const dockerfile = read('Dockerfile');
    const bases = [...dockerfile.matchAll(/^ARG (BUILD|RUNTIME)_IMAGE=(.+)$/gm)].map((match) => match[2]);
    expect(bases).toHaveLength(2);
    for (const base of bases) expect(base).toMatch(/@sha256:[0-9a-f]{64}$/);
    for (const from of dockerfile.matchAll(/^FROM (\S+)/gm)) expect(from[1]).toMatch(/^\$\{(BUILD|RUNTIME)_IMAGE\}$/);
    expect(dockerfile).toContain('org.opencontainers.image.version="${VERSION}"');
  });
});
