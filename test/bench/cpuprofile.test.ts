import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { summarizeProfile } from '../../bench/lib/cpuprofile.js';

const frame = (id: number, functionName: string, url: string, children: number[] = [], lineNumber = 9) => ({
  id,
  callFrame: { functionName, url, lineNumber, columnNumber: 0, scriptId: String(id) },
  children,
});

// (root) → handler (ours) → compare (fast-json-patch); idle samples do not count as busy.
const PROFILE = {
  nodes: [
    frame(1, '(root)', '', [2, 4]),
    frame(2, 'handler', 'file:///srv/app/dist/webhook/app.js', [3]),
    frame(3, 'compare', 'file:///srv/app/node_modules/fast-json-patch/commonjs/duplex.js'),
    frame(4, '(idle)', ''),
  ],
  startTime: 0,
  endTime: 10_000,
  samples: [2, 3, 3, 3, 4, 4],
  timeDeltas: [1000, 1000, 1000, 1000, 5000, 1000],
};

describe('CPU profile summary', () => {
  const dirs: string[] = [];
  afterAll(async () => Promise.all(dirs.map((dir) => rm(dir, { recursive: true, force: true }))));

  it('splits busy time into self and inclusive shares per area and names our functions', async () => {
    const dir = await mkdtemp(path.join(os.tmpdir(), 'profile-'));
    dirs.push(dir);
    const file = path.join(dir, 'x.cpuprofile');
    await writeFile(file, JSON.stringify(PROFILE));
    const summary = await summarizeProfile(file);
    expect(summary.busyMs).toBe(4);
    expect(summary.selfByArea).toEqual([
      { area: 'fast-json-patch', percent: 75 },
      { area: 'ours', percent: 25 },
    ]);
    expect(summary.inclusiveByArea).toContainEqual({ area: 'ours', percent: 100 });
    expect(summary.ourFunctions).toEqual([{ name: 'handler', where: 'dist/webhook/app.js:10', percent: 100 }]);
  });

  it('places frames of the bundle at their sources through its source map', async () => {
    const dir = await mkdtemp(path.join(os.tmpdir(), 'profile-'));
    dirs.push(dir);
    const chunk = path.join(dir, 'dist', 'chunks', 'chunk-X.js');
    await mkdir(path.dirname(chunk), { recursive: true });
    await writeFile(chunk, '');
    // Generated line 10 is src/webhook/app.ts:10, line 20 is express's router.js:41.
    const map = {
      version: 3,
      sources: ['../../node_modules/express/lib/router.js', '../../src/webhook/app.ts'],
      names: [],
      mappings: `${';'.repeat(9)}ACSA${';'.repeat(10)}AD+BA`,
    };
    await writeFile(`${chunk}.map`, JSON.stringify(map));
    const url = `file://${chunk}`;
    const bundled = {
      ...PROFILE,
      nodes: [frame(1, '(root)', '', [2, 4]), frame(2, 'handler', url, [3]), frame(3, 'handle', url, [], 19), frame(4, '(idle)', '')],
    };
    const file = path.join(dir, 'bundled.cpuprofile');
    await writeFile(file, JSON.stringify(bundled));
    const summary = await summarizeProfile(file);
    expect(summary.selfByArea).toEqual([
      { area: 'express', percent: 75 },
      { area: 'ours', percent: 25 },
    ]);
    expect(summary.ourFunctions).toEqual([{ name: 'handler', where: 'src/webhook/app.ts:10', percent: 100 }]);
  });
});
