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
