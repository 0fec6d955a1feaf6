import { readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { imageNodeOptions } from '../../bench/lib/tools.js';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const read = (file: string) => readFileSync(path.join(ROOT, file), 'utf8');

describe('the V8 flags the bench runs ours with', () => {
  it('are the image\'s, and the webhook Deployments replace them with their own', () => {
    expect(imageNodeOptions(read('Dockerfile'))).toBe('--max-semi-space-size=1');
    for (const deployment of ['manifests/base/deployment.yaml', 'manifests/helm/session-storage/templates/deployment.yaml']) {
      expect(read(deployment)).toMatch(/- name: NODE_OPTIONS\n\s+value: --max-old-space-size=96/);
    }
  });

  it('read a quoted or a bare value, or none', () => {
    expect(imageNodeOptions('FROM x\nENV NODE_OPTIONS="--a=1 --b"\n')).toBe('--a=1 --b');
    expect(imageNodeOptions('ENV NODE_OPTIONS=--c\n')).toBe('--c');
    expect(imageNodeOptions('ENV NODE_ENV=production\n')).toBeUndefined();
  });
});
