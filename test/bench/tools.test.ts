import { readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { imageEnv } from '../../bench/lib/tools.js';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const read = (file: string) => readFileSync(path.join(ROOT, file), 'utf8');

describe('the environment the bench runs ours with', () => {
  it('is the image\'s runtime ENV, and the webhook Deployments replace its V8 flags with their own', () => {
    expect(imageEnv(read('Dockerfile'))).toEqual({ NODE_ENV: 'production', NODE_OPTIONS: '--max-semi-space-size=1', MALLOC_ARENA_MAX: '2' });
    expect(read('manifests/base/deployment.yaml')).toMatch(/- name: NODE_OPTIONS\n\s+value: --max-old-space-size=96/);
    // The chart sets it through its env helper, so `env.NODE_OPTIONS` replaces it in place.
    expect(read('manifests/helm/session-storage/templates/deployment.yaml')).toMatch(/"name" "NODE_OPTIONS" "value" "--max-old-space-size=96 /);
  });

  it('reads quoted and bare values from the last stage only', () => {
    expect(imageEnv('FROM x\nENV NODE_OPTIONS="--a=1 --b"\n')).toEqual({ NODE_OPTIONS: '--a=1 --b' });
    expect(imageEnv('ENV NODE_OPTIONS=--c\n')).toEqual({ NODE_OPTIONS: '--c' });
    expect(imageEnv('FROM build\nENV CI=true\nFROM runtime\nENV MALLOC_ARENA_MAX=2\n')).toEqual({ MALLOC_ARENA_MAX: '2' });
    expect(imageEnv('FROM x\nRUN true\n')).toEqual({});
  });
});
