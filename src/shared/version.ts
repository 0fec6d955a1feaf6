import { readFileSync } from 'node:fs';

// Read once from the package manifest so the version in status annotations, metadata.json
// and logs is the one that was built, without a build-time code generation step.
function readVersion(): string {
  const manifest = new URL('../../package.json', import.meta.url);
  const parsed = JSON.parse(readFileSync(manifest, 'utf8')) as { version?: unknown };
  return typeof parsed.version === 'string' ? parsed.version : '0.0.0';
}

export const VERSION: string = readVersion();
