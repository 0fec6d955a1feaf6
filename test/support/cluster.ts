import { spawn, type ChildProcess } from 'node:child_process';
import { generateKeyPairSync } from 'node:crypto';
import { createWriteStream, existsSync, readFileSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { request } from 'node:https';
import { freePort } from './free-port.js';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { stringify } from 'yaml';
import { createCA, issueCertificate, type CertKeyPem } from '../../src/webhook/ca/pki.js';

// A real control plane on loopback: etcd and kube-apiserver built from their Go modules
// by scripts/build-control-plane.sh. Nothing here listens on anything but 127.0.0.1.

const BIN_DIR = resolve(import.meta.dirname, '../../.cache/bin');

export interface ClusterInfo {
  kubeconfigPath: string;
  server: string;
  /** PEM of the CA that signed the API server's serving certificate. */
  serverCaPath: string;
  kubectl: string;
  dataDir: string;
}

export interface RunningCluster extends ClusterInfo {
  stop(): Promise<void>;
}

const YEAR_MS = 365 * 24 * 3600_000;

function requiredBinaries(binDir = BIN_DIR): string[] {
  return [join(binDir, 'etcd'), join(binDir, 'kube-apiserver')];
}

function kubectlPath(binDir = BIN_DIR): string {
  const built = join(binDir, 'kubectl');
  return existsSync(built) ? built : 'kubectl';
}

function launch(binary: string, args: string[], logPath: string): ChildProcess {
  const child = spawn(binary, args, { stdio: ['ignore', 'pipe', 'pipe'] });
  const log = createWriteStream(logPath);
  child.stdout?.pipe(log);
  child.stderr?.pipe(log);
  return child;
}

async function stopProcess(child: ChildProcess, graceMs = 5_000): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise<void>((done) => child.once('exit', () => done()));
  child.kill('SIGTERM');
  const timer = setTimeout(() => child.kill('SIGKILL'), graceMs);
  await exited;
  clearTimeout(timer);
}

function tail(path: string, lines = 30): string {
  try {
    return readFileSync(path, 'utf8').split('\n').slice(-lines).join('\n');
  } catch {
    return '(no log)';
  }
}

async function httpsStatus(url: string, ca: string, client: CertKeyPem): Promise<number> {
  return new Promise((done) => {
    const req = request(url, { ca, cert: client.cert, key: client.key, timeout: 2_000 }, (res) => {
      res.resume();
      done(res.statusCode ?? 0);
    });
    req.on('error', () => done(0));
    req.on('timeout', () => req.destroy());
    req.end();
  });
}

async function waitFor(
  what: string,
  check: () => Promise<boolean>,
  processes: Array<{ child: ChildProcess; log: string }>,
  timeoutMs: number,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    const dead = processes.find((p) => p.child.exitCode !== null);
    if (dead) throw new Error(`${what}: a control-plane process exited early:\n${tail(dead.log)}`);
    if (await check()) return;
    await new Promise((r) => setTimeout(r, 200));
  }
  throw new Error(`${what}: not ready after ${timeoutMs} ms:\n${processes.map((p) => tail(p.log)).join('\n---\n')}`);
}

function kubeconfigYaml(server: string, serverCa: string, user: string, client: CertKeyPem): string {
  const b64 = (pem: string) => Buffer.from(pem).toString('base64');
  return stringify({
    apiVersion: 'v1',
    kind: 'Config',
    clusters: [{ name: 'e2e', cluster: { server, 'certificate-authority-data': b64(serverCa) } }],
    users: [{ name: user, user: { 'client-certificate-data': b64(client.cert), 'client-key-data': b64(client.key) } }],
    contexts: [{ name: 'e2e', context: { cluster: 'e2e', user } }],
    'current-context': 'e2e',
  });
}

export async function startCluster(binDir = BIN_DIR): Promise<RunningCluster> {
  const missing = requiredBinaries(binDir).filter((path) => !existsSync(path));
  if (missing.length > 0) {
    throw new Error(`missing control-plane binaries ${missing.join(', ')}: run \`npm run deps\``);
  }
  const dataDir = await mkdtemp(join(tmpdir(), 'session-storage-cluster-'));
  const processes: Array<{ child: ChildProcess; log: string }> = [];
  const stop = async () => {
    for (const p of [...processes].reverse()) await stopProcess(p.child);
    await rm(dataDir, { recursive: true, force: true });
  };
  try {
    const [etcdPort, peerPort, apiPort] = [await freePort(), await freePort(), await freePort()];
    const etcdUrl = `http://127.0.0.1:${etcdPort}`;
    const peerUrl = `http://127.0.0.1:${peerPort}`;
    const etcdLog = join(dataDir, 'etcd.log');
    processes.push({
      log: etcdLog,
      child: launch(join(binDir, 'etcd'), [
        `--data-dir=${join(dataDir, 'etcd')}`,
        `--listen-client-urls=${etcdUrl}`,
        `--advertise-client-urls=${etcdUrl}`,
        `--listen-peer-urls=${peerUrl}`,
        `--initial-advertise-peer-urls=${peerUrl}`,
        `--initial-cluster=default=${peerUrl}`,
        '--unsafe-no-fsync',
        '--log-level=warn',
      ], etcdLog),
    });

    const serverCa = await createCA('e2e-apiserver-ca', YEAR_MS);
    const serving = await issueCertificate(serverCa, {
      commonName: 'kube-apiserver',
      dnsNames: ['localhost', 'kubernetes', 'kubernetes.default.svc'],
      ipAddresses: ['127.0.0.1', '10.0.0.1'],
      usage: 'server',
      validityMs: YEAR_MS,
    });
    const clientCa = await createCA('e2e-client-ca', YEAR_MS);
    const admin = await issueCertificate(clientCa, {
      commonName: 'admin',
      organization: 'system:masters',
      usage: 'client',
      validityMs: YEAR_MS,
    });
    const saKey = generateKeyPairSync('ec', { namedCurve: 'P-256' });
    const files = {
      serverCa: join(dataDir, 'server-ca.crt'),
      servingCert: join(dataDir, 'apiserver.crt'),
      servingKey: join(dataDir, 'apiserver.key'),
      clientCaCert: join(dataDir, 'client-ca.crt'),
      saPub: join(dataDir, 'sa.pub'),
      saKey: join(dataDir, 'sa.key'),
      kubeconfig: join(dataDir, 'kubeconfig'),
    };
    const server = `https://127.0.0.1:${apiPort}`;
    await Promise.all([
      writeFile(files.serverCa, serverCa.cert),
      writeFile(files.servingCert, serving.cert),
      writeFile(files.servingKey, serving.key, { mode: 0o600 }),
      writeFile(files.clientCaCert, clientCa.cert),
      writeFile(files.saPub, saKey.publicKey.export({ type: 'spki', format: 'pem' })),
      writeFile(files.saKey, saKey.privateKey.export({ type: 'pkcs8', format: 'pem' }), { mode: 0o600 }),
      writeFile(files.kubeconfig, kubeconfigYaml(server, serverCa.cert, 'admin', admin), { mode: 0o600 }),
    ]);

    const apiLog = join(dataDir, 'kube-apiserver.log');
    processes.push({
      log: apiLog,
      child: launch(join(binDir, 'kube-apiserver'), [
        `--etcd-servers=${etcdUrl}`,
        '--bind-address=127.0.0.1',
        '--advertise-address=127.0.0.1',
        `--secure-port=${apiPort}`,
        `--cert-dir=${join(dataDir, 'apiserver-certs')}`,
        `--tls-cert-file=${files.servingCert}`,
        `--tls-private-key-file=${files.servingKey}`,
        `--client-ca-file=${files.clientCaCert}`,
        '--authorization-mode=RBAC',
        `--service-account-issuer=${server}`,
        `--service-account-key-file=${files.saPub}`,
        `--service-account-signing-key-file=${files.saKey}`,
        '--service-cluster-ip-range=10.0.0.0/24',
        '--allow-privileged=true',
        // Nothing but this API server runs: no controller-manager, no scheduler, no nodes.
        '--endpoint-reconciler-type=none',
      ], apiLog),
    });

    await waitFor(
      'kube-apiserver /readyz',
      async () => (await httpsStatus(`${server}/readyz`, serverCa.cert, admin)) === 200,
      processes,
      90_000,
    );
    return {
      kubeconfigPath: files.kubeconfig,
      server,
      serverCaPath: files.serverCa,
      kubectl: kubectlPath(binDir),
      dataDir,
      stop,
    };
  } catch (error) {
    await stop();
    throw error;
  }
}
