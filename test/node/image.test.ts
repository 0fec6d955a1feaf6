import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { readdir, readFile } from 'node:fs/promises';
import { join, relative } from 'node:path';
import { Readable } from 'node:stream';
import { createGunzip } from 'node:zlib';
import { extract } from 'tar-stream';
import { expect, inject, it } from 'vitest';
import { ROOT } from '../support/cluster-client.js';

const node = inject('node');

/** name => bytes of every file of a tar stream (gzip or not). */
async function untar(stream: Readable): Promise<Map<string, { data: Buffer; mode: number; type: string }>> {
  const entries = new Map<string, { data: Buffer; mode: number; type: string }>();
  const ex = extract();
  ex.on('entry', (header, body, next) => {
    const chunks: Buffer[] = [];
    body.on('data', (c) => chunks.push(c as Buffer));
    body.on('end', () => {
      entries.set(header.name.replace(/^\.?\//, '').replace(/\/$/, ''), { data: Buffer.concat(chunks), mode: header.mode ?? 0, type: header.type ?? 'file' });
      next();
    });
  });
  await new Promise<void>((done, fail) => {
    ex.on('finish', done);
    ex.on('error', fail);
    stream.on('error', fail);
    stream.pipe(ex);
  });
  return entries;
}

async function filesUnder(dir: string): Promise<string[]> {
  const entries = await readdir(dir, { recursive: true, withFileTypes: true });
  return entries.filter((e) => e.isFile()).map((e) => relative(dir, join(e.parentPath, e.name))).sort();
}

// The Dockerfile's runtime stage, read here independently of scripts/build-image.mjs:
// instruction => arguments, continuations joined, in order.
function runtimeStage(dockerfile: string): Array<[string, string]> {
  const lines = dockerfile.replace(/\\\n/g, ' ').split('\n').map((l) => l.trim()).filter((l) => l && !l.startsWith('#'));
  const from = lines.findLastIndex((l) => l.startsWith('FROM '));
  return lines.slice(from + 1).map((l) => [l.split(/\s+/)[0]!, l.slice(l.indexOf(' ') + 1)]);
}

// The engine-less image and the Dockerfile agree: same files under the same paths, same
// user, environment, working directory, ports, labels and entrypoint. The image the node
// runs (the webhook's Deployment, the injected agent) is this tarball.
it('the image built without an engine matches the Dockerfile', async () => {
  const archive = await untar(createReadStream(node.imageTar));
  const manifest = JSON.parse(archive.get('manifest.json')!.data.toString()) as Array<{ Config: string; Layers: string[]; RepoTags: string[] }>;
  expect(manifest).toHaveLength(1);
  expect(manifest[0]!.RepoTags).toEqual([node.image]);
  const config = JSON.parse(archive.get(manifest[0]!.Config)!.data.toString()) as {
    config: { Env: string[]; User: string; WorkingDir: string; Entrypoint: string[]; Cmd: string[]; Labels: Record<string, string>; ExposedPorts: Record<string, object> };
    os: string;
    architecture: string;
  };
  const layerData = archive.get(manifest[0]!.Layers[0]!)!.data;
  const gz = layerData[0] === 0x1f && layerData[1] === 0x8b;
  const layer = await untar(gz ? Readable.from(layerData).pipe(createGunzip()) : Readable.from(layerData));

  const stage = runtimeStage(await readFile(join(ROOT, 'Dockerfile'), 'utf8'));
  const args = (keyword: string) => stage.filter(([k]) => k === keyword).map(([, a]) => a);
  expect(config.os).toBe('linux');
  expect(config.architecture).toBe('amd64');
  expect(config.config.User).toBe(args('USER').at(-1));
  expect(config.config.WorkingDir).toBe(args('WORKDIR').at(-1));
  expect(config.config.Entrypoint).toEqual(JSON.parse(args('ENTRYPOINT').at(-1)!));
  expect(config.config.Cmd).toEqual(JSON.parse(args('CMD').at(-1)!));
  expect(Object.keys(config.config.ExposedPorts)).toEqual(args('EXPOSE').map((p) => `${p}/tcp`));
  for (const env of args('ENV')) expect(config.config.Env).toContain(env.replace(/^(\w+)\s*=\s*/, '$1='));
  const version = JSON.parse(await readFile(join(ROOT, 'package.json'), 'utf8')).version as string;
  const labels = Object.fromEntries([...args('LABEL').join(' ').matchAll(/([\w.-]+)="([^"]*)"/g)].map(([, k, v]) => [k!, v!]));
  expect(Object.keys(config.config.Labels).sort()).toEqual(Object.keys(labels).sort());
  for (const [key, value] of Object.entries(labels)) {
    if (!value.includes('$')) expect(config.config.Labels[key], key).toBe(value);
  }
  expect(config.config.Labels['org.opencontainers.image.version']).toBe(version);

  // COPY destinations hold exactly the repository's build: dist/ file for file, package.json.
  const workdir = config.config.WorkingDir.replace(/^\//, '');
  const copies = args('COPY').map((a) => a.split(/\s+/).at(-1)!.replace(/^\.\//, ''));
  expect(copies.sort()).toEqual(['dist', 'package.json']);
  const hash = (b: Buffer) => createHash('sha256').update(b).digest('hex');
  expect(hash(layer.get(`${workdir}/package.json`)!.data)).toBe(hash(await readFile(join(ROOT, 'package.json'))));
  const dist = await filesUnder(join(ROOT, 'dist'));
  const imageDist = [...layer.keys()].filter((k) => k.startsWith(`${workdir}/dist/`) && layer.get(k)!.type === 'file').map((k) => k.slice(`${workdir}/dist/`.length)).sort();
  expect(imageDist).toEqual(dist);
  for (const file of dist) expect(hash(layer.get(`${workdir}/dist/${file}`)!.data), file).toBe(hash(await readFile(join(ROOT, 'dist', file))));

  // The ENTRYPOINT's Node is the runtime base's major (nodejs24 in RUNTIME_IMAGE), executable,
  // with the loader it needs; the USER exists, and nothing else runs as root by default.
  const nodeBin = layer.get(config.config.Entrypoint[0]!.replace(/^\//, ''))!;
  expect(nodeBin.mode & 0o111).not.toBe(0);
  const baseMajor = /nodejs(\d+)-/.exec(await readFile(join(ROOT, 'Dockerfile'), 'utf8'))![1];
  expect(nodeBin.data.includes(Buffer.from(`download/release/v${baseMajor}.`))).toBe(true);
  expect(layer.has('lib64/ld-linux-x86-64.so.2')).toBe(true);
  expect(layer.get('etc/passwd')!.data.toString()).toMatch(new RegExp(`:${config.config.User.split(':')[0]}:${config.config.User.split(':')[1]}:`));
  expect(layer.get('tmp')!.mode & 0o1777).toBe(0o1777);
});
