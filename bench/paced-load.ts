import { readFileSync } from 'node:fs';
import { Agent, request } from 'node:https';

// An open-loop load generator, run as its own process: request i is due at start + i/rate
// whatever happened to earlier ones, as an API server's admission calls arrive, and its
// latency is counted from when it was due (so a stall is not hidden by the client waiting
// it out). autocannon's own rate limit sends each connection's share of a second as one
// burst at the top of the second, which measures queueing behind that burst instead.

interface Args {
  url: string;
  ca: string;
  body: string;
  rate: number;
  seconds: number;
  // Sent first and not counted: opens the connections a steady stream needs.
  warmupSeconds: number;
}

export interface PacedResult {
  rate: number;
  seconds: number;
  sent: number;
  ok: number;
  non2xx: number;
  errors: number;
  errorCodes: Record<string, number>;
  achievedPerSecond: number;
  latencyMs: { p50: number; p99: number; p99_9: number; max: number; mean: number };
}

function percentile(sorted: Float64Array, p: number): number {
  if (sorted.length === 0) return 0;
  const index = Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1);
  return Math.round(sorted[Math.max(0, index)]! * 100) / 100;
}

async function main(): Promise<void> {
  const args = JSON.parse(process.argv[2] ?? '{}') as Args;
  const ca = readFileSync(args.ca);
  const body = readFileSync(args.body);
  // Most recently used socket first, and idle ones dropped before the server's 5 s
  // keep-alive timeout closes them: a request must never be written to a socket the server
  // is closing (a client race, not a webhook failure).
  const agent = new Agent({ ca, keepAlive: true, maxSockets: 64, scheduling: 'lifo', timeout: 4_000 });
  const warmup = Math.round(args.rate * args.warmupSeconds);
  const total = warmup + Math.round(args.rate * args.seconds);
  const latencies = new Float64Array(total);
  let sent = 0;
  let done = 0;
  let ok = 0;
  let non2xx = 0;
  let errors = 0;
  const errorCodes: Record<string, number> = {};
  const start = performance.now();
  const interval = 1000 / args.rate;

  const finished = new Promise<void>((resolve) => {
    const complete = (index: number, due: number, status: number | undefined) => {
      latencies[index] = performance.now() - due;
      if (status === undefined) errors += 1;
      else if (status >= 200 && status < 300) ok += 1;
      else non2xx += 1;
      done += 1;
      if (done === total) resolve();
    };
    const fire = (index: number, due: number) => {
      const req = request(
        args.url,
        { method: 'POST', agent, headers: { 'content-type': 'application/json', 'content-length': body.length } },
        (res) => {
          res.on('data', () => undefined);
          res.on('end', () => complete(index, due, res.statusCode));
        },
      );
      req.on('error', (error: NodeJS.ErrnoException) => {
        const code = error.code ?? error.message;
        errorCodes[code] = (errorCodes[code] ?? 0) + 1;
        complete(index, due, undefined);
      });
      req.end(body);
    };
    const tick = () => {
      const now = performance.now();
      while (sent < total && start + sent * interval <= now) {
        fire(sent, start + sent * interval);
        sent += 1;
      }
      if (sent < total) setTimeout(tick, Math.max(0, start + sent * interval - performance.now()));
    };
    tick();
  });
  await finished;
  const elapsed = (performance.now() - start) / 1000 - args.warmupSeconds;
  agent.destroy();
  const sorted = latencies.slice(warmup).sort();
  const mean = sorted.reduce((sum, value) => sum + value, 0) / sorted.length;
  const result: PacedResult = {
    rate: args.rate,
    seconds: args.seconds,
    sent: sent - warmup,
    ok,
    non2xx,
    errors,
    errorCodes,
    achievedPerSecond: Math.round((total - warmup) / elapsed),
    latencyMs: {
      p50: percentile(sorted, 50),
      p99: percentile(sorted, 99),
      p99_9: percentile(sorted, 99.9),
      max: percentile(sorted, 100),
      mean: Math.round(mean * 100) / 100,
    },
  };
  process.stdout.write(JSON.stringify(result));
}

main().catch((error: unknown) => {
  process.stderr.write(`${error instanceof Error ? error.message : String(error)}\n`);
  process.exit(1);
});
