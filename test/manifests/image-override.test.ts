import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';
import { parseAllDocuments } from 'yaml';
import { agentImageOf, type DeploymentLike } from '../support/agent-image.js';
import { helmTemplate } from '../support/helm.js';

// An admin who mirrors or builds the image changes one name. Both images must move, and
// nothing else: a setting whose value happens to equal the image's name stays as it is.

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const KUBECTL = existsSync(path.join(ROOT, '.cache/bin/kubectl')) ? path.join(ROOT, '.cache/bin/kubectl') : 'kubectl';
const run = promisify(execFile);
const MIRROR = 'registry.example.com/mirror/session-storage:9.9.9';

type Doc = { kind: string; metadata: { name: string } } & DeploymentLike;

function objects(yaml: string): Map<string, Doc> {
  const map = new Map<string, Doc>();
  for (const doc of parseAllDocuments(yaml)) {
    const object = doc.toJS() as Doc | null;
    if (object) map.set(`${object.kind}/${object.metadata.name}`, object);
  }
  return map;
}

/** Every object with the two image fields blanked, and the two images. */
function split(yaml: string) {
  const all = objects(yaml);
  const deployment = all.get('Deployment/session-storage-webhook')!;
  const images: Record<string, string | undefined> = { webhook: deployment.spec?.template?.spec?.containers?.[0]?.image, agent: agentImageOf(deployment) };
  const template = deployment.spec!.template!;
  template.spec!.containers![0]!.image = '<image>';
  template.metadata!.annotations!['ambient-code.io/agent-image'] = '<image>';
  // `helm test`'s pod runs the same image.
  const testPod = all.get('Pod/session-storage-test-admission') as { spec: { containers: Array<{ image: string }> } } | undefined;
  if (testPod) testPod.spec.containers[0]!.image = '<image>';
  // So does the retention CronJob, in both installs.
  const gc = all.get('CronJob/session-storage-gc') as unknown as { spec: { jobTemplate: { spec: { template: { spec: { containers: Array<{ image: string }> } } } } } };
  const gcContainer = gc.spec.jobTemplate.spec.template.spec.containers[0]!;
  images.gc = gcContainer.image;
  gcContainer.image = '<image>';
  // So does the chart's uninstall hook.
  const hookPod = (all.get('Job/session-storage-uninstall') as { spec: { template: { spec: { containers: Array<{ image: string }> } } } } | undefined)
    ?.spec.template.spec;
  if (!hookPod) return { images, rest: all };
  const uninstall = hookPod.containers[0]!.image;
  hookPod.containers[0]!.image = '<image>';
  return { images: { ...images, uninstall }, rest: all };
}

async function kustomizeOverlay(lines: string[]): Promise<string> {
  const overlay = await mkdtemp(path.join(tmpdir(), 'overlay-'));
  try {
    await writeFile(
      path.join(overlay, 'kustomization.yaml'),
      ['resources:', `  - ${path.relative(overlay, path.join(ROOT, 'manifests'))}`, ...lines, ''].join('\n'),
    );
    return (await run(KUBECTL, ['kustomize', overlay])).stdout;
  } finally {
    await rm(overlay, { recursive: true, force: true });
  }
}

describe('overriding the image', () => {
  it("kustomize: the README's overlay moves the webhook and the agent image and changes nothing else", async () => {
    const base = split((await run(KUBECTL, ['kustomize', path.join(ROOT, 'manifests')])).stdout);
    const mirrored = split(
      await kustomizeOverlay([
        'images:',
        '  - name: ghcr.io/ambient-code/ambient-session-storage',
        '    newName: registry.example.com/mirror/session-storage',
        '    newTag: 9.9.9',
      ]),
    );
    expect(mirrored.images).toEqual({ webhook: MIRROR, agent: MIRROR, gc: MIRROR });
    expect(mirrored.rest).toEqual(base.rest);
  });

  it('kustomize: an images entry named like the configuration (ambient-session-storage) changes nothing', async () => {
    const base = (await run(KUBECTL, ['kustomize', path.join(ROOT, 'manifests')])).stdout;
    const rendered = await kustomizeOverlay(['images:', '  - name: ambient-session-storage', `    newName: registry.example.com/x`]);
    expect(objects(rendered)).toEqual(objects(base));
  });

  it('Helm: image.repository and image.tag move both images and change nothing else', async () => {
    const base = split(await helmTemplate());
    const mirrored = split(
      await helmTemplate(['--set', 'image.repository=registry.example.com/mirror/session-storage', '--set', 'image.tag=9.9.9']),
    );
    expect(mirrored.images).toEqual({ webhook: MIRROR, agent: MIRROR, gc: MIRROR, uninstall: MIRROR });
    expect(mirrored.rest).toEqual(base.rest);
  });
});
