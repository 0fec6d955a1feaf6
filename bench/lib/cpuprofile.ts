import { readFile } from 'node:fs/promises';
import { SourceMap } from 'node:module';

interface CallFrame {
  functionName: string;
  url: string;
  lineNumber: number;
  columnNumber?: number;
}

interface ProfileNode {
  id: number;
  callFrame: CallFrame;
  hitCount?: number;
  children?: number[];
}

interface CpuProfile {
  nodes: ProfileNode[];
  startTime: number;
  endTime: number;
  samples?: number[];
  timeDeltas?: number[];
}

export interface ProfileSummary {
  busyMs: number;
  // Share of busy samples with a frame of this area anywhere on the stack (areas overlap).
  inclusiveByArea: Array<{ area: string; percent: number }>;
  // Share of busy samples whose innermost frame is in this area (sums to 100).
  selfByArea: Array<{ area: string; percent: number }>;
  // Our own functions by inclusive share: where a review's time goes, top-down.
  ourFunctions: Array<{ name: string; where: string; percent: number }>;
  topSelf: Array<{ name: string; where: string; percent: number }>;
}

// Which part of the stack a frame belongs to: our code, a dependency, or Node itself.
function areaOf(url: string, functionName: string): string {
  if (url === '') {
    if (functionName === '(garbage collector)') return 'garbage collection';
    return 'native/V8';
  }
  const dependency = /node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(url);
  if (dependency) return dependency[1]!;
  if (url.startsWith('node:')) {
    const module = url.slice('node:'.length).replace(/^internal\//, '').split('/')[0]!;
    return `node:${module}`;
  }
  return /\/(dist|src)\//.test(url) ? 'ours' : url;
}

function whereOf(frame: CallFrame): string {
  return frame.url === '' ? '' : `${frame.url.replace(/^.*\/(node_modules|dist|src)\//, '$1/')}:${frame.lineNumber + 1}`;
}

// The CLI is a bundle (scripts/build.mjs): its dependencies run from dist/ too, so each frame
// is placed at its source (src/ or node_modules/) through the bundle's source maps.
async function sourceMapped(nodes: ProfileNode[]): Promise<ProfileNode[]> {
  const maps = new Map<string, Promise<SourceMap | undefined>>();
  const mapOf = (url: string) => {
    let map = maps.get(url);
    if (map === undefined) {
      map = readFile(new URL(`${url}.map`), 'utf8').then(
        (text) => new SourceMap(JSON.parse(text) as ConstructorParameters<typeof SourceMap>[0]),
        () => undefined,
      );
      maps.set(url, map);
    }
    return map;
  };
  return Promise.all(
    nodes.map(async (node) => {
      const { url, lineNumber, columnNumber } = node.callFrame;
      if (!url.startsWith('file:')) return node;
      const entry = (await mapOf(url))?.findEntry(lineNumber, columnNumber ?? 0) as { originalSource?: string; originalLine?: number } | undefined;
      if (entry?.originalSource === undefined || entry.originalLine === undefined) return node;
      return { ...node, callFrame: { ...node.callFrame, url: new URL(entry.originalSource, url).href, lineNumber: entry.originalLine } };
    }),
  );
}

const IDLE = new Set(['(idle)', '(program)']);
// Frames on every stack say nothing about where the time goes.
const ROOTS = new Set(['(root)']);

function ranked(map: Map<string, number>, busy: number, top: number): Array<{ area: string; percent: number }> {
  return [...map]
    .sort((a, b) => b[1] - a[1])
    .slice(0, top)
    .map(([area, micros]) => ({ area, percent: Math.round((1000 * micros) / busy) / 10 }));
}

/** Where the webhook's CPU went while it served load, from the samples V8 took. */
export async function summarizeProfile(file: string, top = 12): Promise<ProfileSummary> {
  const profile = JSON.parse(await readFile(file, 'utf8')) as CpuProfile;
  const nodes = await sourceMapped(profile.nodes);
  const byId = new Map(nodes.map((node) => [node.id, node]));
  const parent = new Map<number, number>();
  for (const node of nodes) for (const child of node.children ?? []) parent.set(child, node.id);
  const samples = profile.samples ?? [];
  const deltas = profile.timeDeltas ?? [];
  let busy = 0;
  const selfArea = new Map<string, number>();
  const inclusiveArea = new Map<string, number>();
  const ours = new Map<string, { name: string; where: string; micros: number }>();
  const self = new Map<string, { name: string; where: string; micros: number }>();
  samples.forEach((id, index) => {
    const micros = deltas[index] ?? 0;
    const leaf = byId.get(id)!.callFrame;
    if (IDLE.has(leaf.functionName)) return;
    busy += micros;
    const leafArea = areaOf(leaf.url, leaf.functionName);
    selfArea.set(leafArea, (selfArea.get(leafArea) ?? 0) + micros);
    const selfKey = `${leaf.functionName}@${whereOf(leaf)}`;
    const selfEntry = self.get(selfKey) ?? { name: leaf.functionName || '(anonymous)', where: whereOf(leaf), micros: 0 };
    selfEntry.micros += micros;
    self.set(selfKey, selfEntry);
    const seenAreas = new Set<string>();
    const seenOurs = new Set<string>();
    for (let node: number | undefined = id; node !== undefined; node = parent.get(node)) {
      const frame = byId.get(node)!.callFrame;
      if (ROOTS.has(frame.functionName)) continue;
      const area = areaOf(frame.url, frame.functionName);
      seenAreas.add(area);
      if (area === 'ours') seenOurs.add(`${frame.functionName}@${whereOf(frame)}`);
    }
    for (const area of seenAreas) inclusiveArea.set(area, (inclusiveArea.get(area) ?? 0) + micros);
    for (const key of seenOurs) {
      const [name, where] = key.split('@') as [string, string];
      const entry = ours.get(key) ?? { name: name || '(anonymous)', where, micros: 0 };
      entry.micros += micros;
      ours.set(key, entry);
    }
  });
  const percent = (micros: number) => Math.round((1000 * micros) / busy) / 10;
  const functions = (map: Map<string, { name: string; where: string; micros: number }>) =>
    [...map.values()]
      .sort((a, b) => b.micros - a.micros)
      .slice(0, top)
      .map((entry) => ({ name: entry.name, where: entry.where, percent: percent(entry.micros) }));
  return {
    busyMs: Math.round(busy / 1000),
    inclusiveByArea: ranked(inclusiveArea, busy, top),
    selfByArea: ranked(selfArea, busy, top),
    ourFunctions: functions(ours),
    topSelf: functions(self),
  };
}
