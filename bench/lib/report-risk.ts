import type { RiskReport, RiskRun, RiskWindow } from '../risk-bench.js';
import { classify } from './requests.js';
import { perHour, secondsAtRisk } from './risk.js';
import { percentile } from './stats.js';

interface AtRisk {
  p50: number;
  p99: number;
  max: number;
  // Writes S3 never showed within the drain.
  lost: number;
}

function atRisk(run: RiskRun): AtRisk | undefined {
  const seconds = secondsAtRisk(run.writes, run.observations);
  if (seconds.length === 0) return undefined;
  return { p50: percentile(seconds, 50), p99: percentile(seconds, 99), max: Math.max(...seconds), lost: seconds.filter((s) => !Number.isFinite(s)).length };
}

const total = (window: RiskWindow) => Object.values(window.requests).reduce((sum, count) => sum + count, 0);

function requestsPerHour(window: RiskWindow): string {
  const classes = Object.entries(classify(window.requests)).filter(([, count]) => count > 0);
  if (classes.length === 0) return '0';
  const detail = classes.map(([name, count]) => `${name} ${Math.round(perHour(count, window.seconds)).toLocaleString('en-US')}`).join(' · ');
  return `${Math.round(perHour(total(window), window.seconds)).toLocaleString('en-US')} (${detail})`;
}

const cpuPerHour = (window: RiskWindow) => `${perHour(window.cpuSeconds, window.seconds).toFixed(1)} s`;

function secondsText(value: number): string {
  return Number.isFinite(value) ? `${value.toFixed(1)} s` : 'never';
}

function row(run: RiskRun): string[] {
  const risk = atRisk(run);
  return [
    run.id === 'ours' ? '**ours**' : run.id,
    run.settings,
    risk ? secondsText(risk.p50) : '–',
    risk ? secondsText(risk.p99) : '–',
    risk ? `${secondsText(risk.max)}${risk.lost > 0 ? `, ${risk.lost} never` : ''}` : '–',
    requestsPerHour(run.active),
    cpuPerHour(run.active),
    requestsPerHour(run.idle),
    cpuPerHour(run.idle),
  ];
}

/** How the rows were measured, in one paragraph. */
export function riskMethod(report: RiskReport): string {
  return (
    `A writer appended a ${'~'}300-byte line to \`.claude/history.jsonl\` every ${report.writeEverySeconds} s for ${report.activeSeconds} s in each tool's copy of the tree at once; ` +
    `data at risk is the time from each append to the first HEAD showing the object at least that long (polled every ${report.pollMs} ms, so ±${report.pollMs} ms). ` +
    `Requests come from MinIO's per-bucket counters (one bucket per tool; the poller's HEADs taken out) and CPU from the processes' own accounting; ` +
    `"per hour" extrapolates the ${report.activeSeconds} s active window and a ${report.idleSeconds} s idle window that followed once every write was in S3.`
  );
}

export function renderRiskTable(report: RiskReport): string {
  const header = ['tool', 'settings', 'at risk p50', 'p99', 'max', 'requests / active hour', 'CPU / active hour', 'requests / idle hour', 'CPU / idle hour'];
  return [
    `| ${header.join(' | ')} |`,
    `| ${header.map((_, i) => (i < 2 ? '---' : '---:')).join(' | ')} |`,
    ...report.tools.map((run) => `| ${row(run).join(' | ')} |`),
  ].join('\n');
}

function verdict(met: boolean): string {
  return met ? '**met**' : '**missed**';
}

export function riskTargets(report: RiskReport): string[] {
  const byId = new Map(report.tools.map((run) => [run.id, run]));
  const ours = byId.get('ours');
  const before = byId.get('ours-interval');
  const lines: string[] = [];
  const risk = ours && atRisk(ours);
  if (risk) lines.push(`data at risk p99 ≤ 5 s with the defaults: ${secondsText(risk.p99)} (p50 ${secondsText(risk.p50)}) → ${verdict(risk.p99 <= 5)}`);
  if (ours && before) {
    const [mine, theirs] = [perHour(total(ours.idle), ours.idle.seconds), perHour(total(before.idle), before.idle.seconds)];
    // An ownership renewal (one PUT every LEASE_TTL_SECONDS/3 or so, in both) may fall in
    // one tool's window and not the other's.
    const renewal = perHour(1, ours.idle.seconds);
    lines.push(
      `an idle hour costs no more requests than the interval sweep alone (give or take one ownership renewal in the window, ${Math.round(renewal)}/hour): ` +
        `${Math.round(mine)} vs ${Math.round(theirs)} → ${verdict(mine <= theirs + renewal)}`,
    );
  }
  return lines.map((line) => `- ${line}`);
}
