import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import ts from 'typescript';
import { describe, expect, it } from 'vitest';

// The source tree's shape, checked so it cannot drift: imports only point down, and
// docs/ARCHITECTURE.md names every source file where it lives.
const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const SRC = path.join(ROOT, 'src');

function sourceFiles(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((entry) => {
    const full = path.join(dir, entry.name);
    if (entry.isDirectory()) return sourceFiles(full);
    return entry.name.endsWith('.ts') ? [path.relative(SRC, full)] : [];
  });
}

// Static and dynamic (lazy) imports of our own files.
function ownImports(file: string): string[] {
  const text = readFileSync(path.join(SRC, file), 'utf8');
  const specifiers = [...text.matchAll(/(?:from|import\()\s*'(\.{1,2}\/[^']+)\.js'/g)].map((match) => match[1]!);
  return specifiers.map((specifier) => path.normalize(path.join(path.dirname(file), `${specifier}.ts`)));
}

// A layer may import its own layer and those with a lower rank, never a higher one. Within
// the agent: the storage port and S3 adapter at the bottom, then what is known about a
// session (state), the local tree (files), the restore bundle, the two commands' bodies,
// and the commands' wiring on top. `settings.ts` and `log.ts` are read by every layer.
const LAYERS: ReadonlyArray<[prefix: string, rank: number]> = [
  ['shared/', 0],
  ['agent/settings.ts', 1],
  ['agent/log.ts', 1],
  ['agent/store/', 2],
  ['agent/state/', 3],
  ['agent/files/', 4],
  ['agent/bundle/', 5],
  ['agent/hydrate/', 6],
  ['agent/sync/', 6],
  ['agent/commands/', 7],
  ['agent/cli.ts', 8],
  ['webhook/config/', 1],
  ['webhook/ca/', 1],
  ['webhook/lookups/', 2],
  ['webhook/mutation/', 3],
  ['webhook/admission/', 4],
  ['webhook/server/', 5],
  ['webhook/command.ts', 6],
  ['webhook/cli.ts', 7],
  ['tools/', 10],
  ['', 11],
];

function layerOf(file: string): { prefix: string; rank: number } {
  const [prefix, rank] = LAYERS.find(([candidate]) => file.startsWith(candidate))!;
  return { prefix, rank };
}

// Sides of the product: the agent and the webhook never import each other; tools may
// import both; shared imports nothing of ours but itself.
function sideOf(file: string): string {
  return file.includes('/') ? file.slice(0, file.indexOf('/')) : 'entry';
}
const MAY_IMPORT: Record<string, readonly string[]> = {
  shared: ['shared'],
  agent: ['agent', 'shared'],
  webhook: ['webhook', 'shared'],
  tools: ['tools', 'agent', 'webhook', 'shared'],
  entry: ['entry', 'tools', 'agent', 'webhook', 'shared'],
};

describe('source layout', () => {
  const files = sourceFiles(SRC);

  it('finds the source tree', () => {
    expect(files).toContain('agent/cli.ts');
    expect(files.length).toBeGreaterThan(100);
  });

  it('has imports that only point down', () => {
    const upward: string[] = [];
    for (const file of files) {
      const from = layerOf(file);
      for (const target of ownImports(file)) {
        const allowedSide = MAY_IMPORT[sideOf(file)]!.includes(sideOf(target));
        const to = layerOf(target);
        const sameLayer = from.prefix === to.prefix && from.prefix.endsWith('/');
        if (!allowedSide || (!sameLayer && to.rank >= from.rank && sideOf(file) === sideOf(target) && sideOf(file) !== 'entry')) {
          upward.push(`${file} -> ${target}`);
        }
      }
    }
    expect(upward).toEqual([]);
  });

  it('keeps the storage port free of file-system code', () => {
    const port = readFileSync(path.join(SRC, 'agent/store/store.ts'), 'utf8');
    expect(port).not.toMatch(/from 'node:fs/);
    expect(ownImports('agent/store/store.ts').every((target) => target.startsWith('shared/'))).toBe(true);
  });

  it('keeps at most ten entries at the top of src/agent', () => {
    expect(readdirSync(path.join(SRC, 'agent')).length).toBeLessThanOrEqual(10);
  });

  // A function that needs more than a screen holds more than one step; name the steps.
  it('has no function longer than 60 lines', () => {
    const long: string[] = [];
    for (const file of files) {
      const source = ts.createSourceFile(file, readFileSync(path.join(SRC, file), 'utf8'), ts.ScriptTarget.Latest, true);
      const visit = (node: ts.Node): void => {
        if (ts.isFunctionLike(node) && 'body' in node && node.body) {
          const first = source.getLineAndCharacterOfPosition(node.getStart(source)).line;
          const last = source.getLineAndCharacterOfPosition(node.getEnd()).line;
          if (last - first + 1 > 60) long.push(`${file}:${first + 1} (${last - first + 1} lines)`);
        }
        ts.forEachChild(node, visit);
      };
      visit(source);
    }
    expect(long).toEqual([]);
  });

  it('names every source file in docs/ARCHITECTURE.md, under its folder', () => {
    const doc = readFileSync(path.join(ROOT, 'docs/ARCHITECTURE.md'), 'utf8');
    const missing = files.filter((file) => !doc.includes(`\`src/${file}\``));
    expect(missing).toEqual([]);
  });
});
