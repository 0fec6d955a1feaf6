import { spawn } from 'node:child_process';
import { mkdtemp, readFile, rm, open } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';

export interface Measured {
  wallSeconds: number;
  peakRssKiB: number;
}

export interface RunOptions {
  env: NodeJS.ProcessEnv;
  cwd?: string;
  // Output of the tool goes here (appended), so a failed run can be diagnosed afterwards.
  logFile: string;
}

/**
 * Runs one tool process under GNU time, which reports the peak RSS of exactly that process
 * (the figure users size their containers by). Wall time is taken around the spawn.
 */
export async function measure(command: string, args: readonly string[], options: RunOptions): Promise<Measured> {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'bench-time-'));
  const timeFile = path.join(dir, 'time');
  const log = await open(options.logFile, 'a');
  try {
    await log.write(`\n$ ${command} ${args.join(' ')}\n`);
    const started = process.hrtime.bigint();
    const code = await new Promise<number | null>((resolve, reject) => {
      const child = spawn('/usr/bin/time', ['-f', '%M', '-o', timeFile, command, ...args], {
        env: options.env,
        cwd: options.cwd,
        stdio: ['ignore', log.fd, log.fd],
      });
      child.on('error', reject);
      child.on('exit', (exitCode) => resolve(exitCode));
    });
    const wallSeconds = Number(process.hrtime.bigint() - started) / 1e9;
    if (code !== 0) {
      const tail = (await readFile(options.logFile, 'utf8')).split('\n').slice(-15).join('\n');
      throw new Error(`${path.basename(command)} ${args[0] ?? ''} exited with ${code}:\n${tail}`);
    }
    const lines = (await readFile(timeFile, 'utf8')).trim().split('\n');
    const peakRssKiB = Number(lines[lines.length - 1]);
    if (!Number.isFinite(peakRssKiB)) throw new Error(`could not read peak RSS from GNU time: ${lines.join(' ')}`);
    return { wallSeconds, peakRssKiB };
  } finally {
    await log.close();
    await rm(dir, { recursive: true, force: true });
  }
}

/**
 * Runs a long-lived process (our sync sidecar) until it prints `doneLine`, the end of the
 * cycle being measured; `atDone` runs at that moment (to read the request counters before
 * anything else happens), then the process is killed. Peak RSS is the kernel's high-water
 * mark of the process at that moment.
 */
export async function measureUntil<T>(
  command: string,
  args: readonly string[],
  options: RunOptions & { doneLine: RegExp; atDone: () => Promise<T> },
): Promise<Measured & { atDone: T }> {
  const log = await open(options.logFile, 'a');
  try {
    await log.write(`\n$ ${command} ${args.join(' ')}  (until ${options.doneLine})\n`);
    const started = process.hrtime.bigint();
    const child = spawn(command, args, { env: options.env, cwd: options.cwd, stdio: ['ignore', 'pipe', log.fd] });
    const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
    const done = new Promise<Measured & { atDone: T }>((resolve, reject) => {
      let buffered = '';
      let matched = false;
      child.on('error', reject);
      child.stdout!.on('data', (chunk: Buffer) => {
        void log.write(chunk);
        buffered += chunk.toString('utf8');
        const lines = buffered.split('\n');
        buffered = lines.pop() ?? '';
        if (matched || !lines.some((line) => options.doneLine.test(line))) return;
        matched = true;
        const wallSeconds = Number(process.hrtime.bigint() - started) / 1e9;
        readFile(`/proc/${child.pid}/status`, 'utf8')
          .then(async (status) => {
            const peakRssKiB = Number(/VmHWM:\s+(\d+)/.exec(status)?.[1]);
            resolve({ wallSeconds, peakRssKiB, atDone: await options.atDone() });
          })
          .catch(reject);
      });
      child.once('exit', (code) => {
        if (!matched) reject(new Error(`${path.basename(command)} exited with ${code} before printing ${options.doneLine}`));
      });
    });
    try {
      return await done;
    } finally {
      child.kill('SIGKILL');
      await exited;
    }
  } finally {
    await log.close();
  }
}
