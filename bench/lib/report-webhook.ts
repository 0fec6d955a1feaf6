import type { LoadResult, WebhookReport } from '../webhook-bench.js';

function verdict(met: boolean): string {
  return met ? '**met**' : '**missed**';
}

function loadRow(name: string, result: LoadResult): string {
  const l = result.latencyMs;
  const connections = result.generator === 'paced' ? `≤ ${result.connections}` : String(result.connections);
  return `| ${name} | ${connections} | ${result.rate ?? 'unbounded'} | ${result.seconds} s | ${Math.round(result.perSecond).toLocaleString('en-US')} | ${l.p50} | ${l.p99} | ${l.p99_9} | ${l.max} | ${result.non2xx + result.errors} |`;
}

export function renderWebhookReport(report: WebhookReport): string {
  const m = report.machine;
  const rss = report.rss;
  const end = rss.at(-1)!.second;
  // RSS saws up and down with garbage collection; what a leak moves is the trough.
  const trough = (from: number, to: number) =>
    Math.min(...rss.filter((sample) => sample.second >= from && sample.second <= to).map((sample) => sample.mib));
  const firstTrough = trough(0, 60);
  const lastTrough = trough(Math.max(0, end - 60), end);
  const peak = Math.max(...rss.map((sample) => sample.mib));
  const growth = lastTrough - firstTrough;
  const p = report.profile;
  const seconds = report.fixed.seconds;
  return [
    '## Webhook: AdmissionReviews over HTTPS',
    '',
    `Command: \`${report.command}\` at commit ${m.commit}, ${report.startedAt} → ${report.finishedAt}.`,
    `Machine: ${m.cpu}, ${m.cores} cores, ${m.memoryGiB} GiB, ${m.kernel}, Node ${m.node}; load average ${m.loadAverage} at the start, ${report.loadAverageAtEnd} at the end (shared machine).`,
    `One \`session-storage webhook\` process (dev certificates, \`--secret-file\` secret source, decision log to a file${report.nodeFlags?.length ? `, the Deployment's \`NODE_OPTIONS=${report.nodeFlags.join(' ')}\`` : ''}${imageEnvText(report.imageEnv)}) and autocannon in a second process, both on 127.0.0.1. ` +
      `Every request is \`${report.review.file}\` (${report.review.bytes} bytes): a session pod that gets the full mutation (${report.review.patchOps} patch operations, a ${report.review.responseBytes}-byte response). ` +
      'autocannon finds the maximum (latency in whole milliseconds). At 1,000 reviews/s, autocannon\'s `-R` sends each connection\'s share of a second as one burst at the top of the second, so its latency is mostly queueing behind that burst; the figures the targets use come from `bench/paced-load.ts`, a second process that sends one review every millisecond whatever happened to earlier ones and counts each latency from when the review was due. Failures (non-2xx answers and connection errors) are counted in the last column; more than 1% aborts the benchmark.',
    '',
    '| run | connections | rate | length | reviews/s | p50 ms | p99 ms | p99.9 ms | max ms | failures |',
    '| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |',
    loadRow('maximum throughput (autocannon)', report.max),
    ...(report.baseline ? [loadRow('baseline: bare `node:https`, same client, same answer size', report.baseline)] : []),
    loadRow('fixed rate, bursts (autocannon `-R`)', report.bursty),
    loadRow('fixed rate, paced (1 per ms)', report.fixed),
    ...(report.baselinePaced ? [loadRow('baseline: bare `node:https`, paced (1 per ms)', report.baselinePaced)] : []),
    '',
    `RSS of the webhook: ${report.idleRssMiB} MiB idle after start-up. During the paced run (sampled every 5 s) it saws with garbage collection between a trough of ${firstTrough} MiB in the first minute and ${lastTrough} MiB in the last, and peaks of up to ${peak} MiB: ${rss.map((sample) => sample.mib.toFixed(0)).join(', ')}.`,
    '',
    '### Targets',
    '',
    report.baseline
      ? `- maximum reviews/s at least 0.7× the bare \`node:https\` baseline (same client, same run): ${Math.round(report.max.perSecond).toLocaleString('en-US')} ÷ ${Math.round(report.baseline.perSecond).toLocaleString('en-US')} = ${(report.max.perSecond / report.baseline.perSecond).toFixed(2)}× → ${verdict(report.max.perSecond >= 0.7 * report.baseline.perSecond)}`
      : `- maximum reviews/s: ${Math.round(report.max.perSecond).toLocaleString('en-US')} (no baseline in this report)`,
    `- p99 at most 5 ms at 1,000 reviews/s: ${report.fixed.latencyMs.p99} ms → ${verdict(report.fixed.latencyMs.p99 <= 5)}` +
      (report.baselinePaced ? ` (the bare \`node:https\` baseline at the same pace: p99 ${report.baselinePaced.latencyMs.p99} ms)` : ''),
    `- RSS flat and under 150 MiB over the run: peak ${peak} MiB; trough ${growth >= 0 ? '+' : ''}${growth.toFixed(1)} MiB from the first minute to the last → ${verdict(peak < 150 && growth < 0.1 * firstTrough)}` +
      (seconds < 300 ? ` (a ${seconds} s run, shorter than the 5 minutes the target asks for)` : ''),
    '',
    `### CPU profile of the hot path (\`node --cpu-prof\`, ${p.seconds} s at maximum throughput, ${(p.busyMs / 1000).toFixed(1)} s busy)`,
    '',
    'Share of busy samples with a frame of each area on the stack (areas overlap: express calls our handler, which calls fast-json-patch):',
    '',
    '| area | inclusive | | area | self |',
    '| --- | ---: | --- | --- | ---: |',
    ...p.inclusiveByArea.map((row, i) => {
      const self = p.selfByArea[i];
      return `| ${row.area} | ${row.percent}% | | ${self?.area ?? ''} | ${self ? `${self.percent}%` : ''} |`;
    }),
    '',
    'Our functions by inclusive share:',
    '',
    '| function | where | inclusive |',
    '| --- | --- | ---: |',
    ...p.ourFunctions.map((row) => `| \`${row.name}\` | ${row.where} | ${row.percent}% |`),
    '',
    'Top functions by self time:',
    '',
    '| function | where | self |',
    '| --- | --- | ---: |',
    ...p.topSelf.map((row) => `| \`${row.name}\` | ${row.where || 'V8/native'} | ${row.percent}% |`),
    '',
  ].join('\n');
}

export function renderWebhookSummary(report: WebhookReport): string {
  const l = report.fixed.latencyMs;
  const rss = report.rss.map((sample) => sample.mib);
  return [
    '| max reviews/s | p50 at 1,000/s | p99 | p99.9 | RSS idle | RSS under load (trough–peak) |',
    '| ---: | ---: | ---: | ---: | ---: | ---: |',
    `| ${Math.round(report.max.perSecond).toLocaleString('en-US')} | ${l.p50} ms | ${l.p99} ms | ${l.p99_9} ms | ${report.idleRssMiB} MiB | ${Math.min(...rss)}–${Math.max(...rss)} MiB |`,
  ].join('\n');
}

// The image's ENV besides NODE_OPTIONS, which both servers ran with.
function imageEnvText(env: Record<string, string> | undefined): string {
  const entries = Object.entries(env ?? {});
  return entries.length === 0 ? '' : `, the image's ${entries.map(([name, value]) => `\`${name}=${value}\``).join(' ')} (the baseline too)`;
}
