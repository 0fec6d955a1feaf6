import { SCENARIOS, SCENARIO_TITLES, type Sample, type Scenario, type ToolRuns } from '../agent-bench.js';
import type { Machine } from './machine.js';
import { classify } from './requests.js';
import { median, medianIndex } from './stats.js';
import type { RiskReport } from '../risk-bench.js';
import { renderRiskTable, riskMethod, riskTargets } from './report-risk.js';

export interface AgentReport {
  command: string;
  startedAt: string;
  finishedAt: string;
  machine: Machine;
  loadAverageAtEnd: string;
  versions: Record<string, string>;
  tree: { files: number; bytes: number; changedFiles: number; description: string };
  runs: number;
  workers: number;
  // The image's ENV ours ran with (absent in reports written before it was recorded).
  imageEnv?: Record<string, string>;
  tools: ToolRuns[];
  // How the runs' files were cleaned up (absent in reports written before they were kept).
  cleanup?: { movedAside: number; removedAtOnce: number };
  scaling?: { tree: { files: number; bytes: number; changedFiles: number; description: string }; ours: ToolRuns };
  // Data at risk and the cost per hour (absent in reports written before issue 26).
  risk?: RiskReport;
}

const MiB = 1024 * 1024;

export function seconds(value: number): string {
  return value < 10 ? `${value.toFixed(2)} s` : `${value.toFixed(1)} s`;
}

function ratio(ours: number, peer: number): string {
  return `${(ours / peer).toFixed(2)}×`;
}

/** The sample whose wall time is the median, so its requests and memory are reported with it. */
export function representative(samples: readonly Sample[]): Sample | undefined {
  if (samples.length === 0) return undefined;
  return samples[medianIndex(samples.map((sample) => sample.wallSeconds))];
}

export function medianWall(samples: readonly Sample[]): number | undefined {
  return samples.length === 0 ? undefined : median(samples.map((sample) => sample.wallSeconds));
}

export function medianRssMiB(samples: readonly Sample[]): number | undefined {
  return samples.length === 0 ? undefined : median(samples.map((sample) => sample.peakRssKiB)) / 1024;
}

export function requestSummary(sample: Sample | undefined): string {
  if (!sample) return '–';
  const classes = Object.entries(classify(sample.requests)).filter(([, count]) => count > 0);
  if (classes.length === 0) return 'none';
  return classes.map(([name, count]) => `${name} ${count.toLocaleString('en-US')}`).join(' · ');
}

function table(header: string[], rows: string[][]): string {
  return [
    `| ${header.join(' | ')} |`,
    `| ${header.map((_, i) => (i < 2 ? '---' : '---:')).join(' | ')} |`,
    ...rows.map((row) => `| ${row.join(' | ')} |`),
  ].join('\n');
}

function wallTable(report: AgentReport): string {
  const ours = report.tools.find((tool) => tool.id === 'ours');
  const rows = report.tools.map((tool) => [
    tool.name,
    tool.settings,
    ...SCENARIOS.map((scenario) => {
      const wall = medianWall(tool.samples[scenario]);
      if (wall === undefined) return '–';
      const oursWall = ours && tool !== ours ? medianWall(ours.samples[scenario]) : undefined;
      return oursWall === undefined ? `**${seconds(wall)}**` : `${seconds(wall)} (${ratio(oursWall, wall)})`;
    }),
  ]);
  return table(['tool', 'settings', ...SCENARIOS.map((s) => SCENARIO_TITLES[s])], rows);
}

function requestTable(report: AgentReport): string {
  const rows = report.tools.map((tool) => [
    tool.name,
    tool.settings,
    ...SCENARIOS.map((scenario) => requestSummary(representative(tool.samples[scenario]))),
  ]);
  return table(['tool', 'settings', ...SCENARIOS.map((s) => SCENARIO_TITLES[s])], rows);
}

function rssTable(report: AgentReport): string {
  const rows = report.tools.map((tool) => [
    tool.name,
    tool.settings,
    ...SCENARIOS.map((scenario) => {
      const rss = medianRssMiB(tool.samples[scenario]);
      return rss === undefined ? '–' : rss.toFixed(0);
    }),
  ]);
  return table(['tool', 'settings', ...SCENARIOS.map((s) => SCENARIO_TITLES[s])], rows);
}

function verdict(met: boolean): string {
  return met ? '**met**' : '**missed**';
}

export function targets(report: AgentReport): string[] {
  const lines: string[] = [];
  const byId = new Map(report.tools.map((tool) => [tool.id, tool]));
  const ours = byId.get('ours');
  if (!ours) return lines;
  const wall = (id: string, scenario: Scenario) => {
    const tool = byId.get(id);
    return tool ? medianWall(tool.samples[scenario]) : undefined;
  };
  for (const scenario of ['cold', 'restore'] as const) {
    const [mine, peer] = [wall('ours', scenario), wall('s5cmd', scenario)];
    if (mine !== undefined && peer !== undefined) {
      const stretch = scenario === 'restore' ? ` (stretch ≤ 0.5×: ${verdict(mine <= peer * 0.5)})` : '';
      lines.push(
        `${SCENARIO_TITLES[scenario]} no slower than s5cmd (defaults): ${seconds(mine)} vs ${seconds(peer)}, ` +
          `ours ÷ s5cmd = ${ratio(mine, peer)} → ${verdict(mine <= peer)}${stretch}`,
      );
    }
  }
  lines.push(...restoreTargets(report, wall));
  const mine = wall('ours', 'nochange');
  const sample = representative(ours.samples.nochange);
  if (mine !== undefined && sample) {
    for (const peerId of ['rclone', 'aws']) {
      const peer = wall(peerId, 'nochange');
      if (peer === undefined) continue;
      lines.push(
        `(b) at least 10× faster than ${byId.get(peerId)!.name}: ${(peer / mine).toFixed(1)}× → ${verdict(peer / mine >= 10)}`,
      );
    }
    const total = Object.values(classify(sample.requests)).reduce((sum, count) => sum + count, 0);
    lines.push(`(b) zero requests of any kind: ${total === 0 ? 'none' : requestSummary(sample)} → ${verdict(total === 0)}`);
  }
  const changed = representative(ours.samples.changed);
  if (changed) {
    const classes = classify(changed.requests);
    const total = Object.values(classes).reduce((sum, count) => sum + count, 0);
    lines.push(
      `(c) requests proportional to the ${report.tree.changedFiles} changed files: ${total} requests ` +
        `(${requestSummary(changed)}) → ${verdict(total <= report.tree.changedFiles * 1.1 + 10)}`,
    );
  }
  const peak = Math.max(...SCENARIOS.flatMap((scenario) => ours.samples[scenario].map((s) => s.peakRssKiB))) / 1024;
  lines.push(`peak RSS under 128 MiB in every scenario: highest ${peak.toFixed(0)} MiB → ${verdict(peak < 128)}`);
  if (report.risk) lines.push(...riskTargets(report.risk).map((line) => line.slice(2)));
  if (report.scaling) {
    const scaled = report.scaling.ours.samples;
    const highest = Math.max(...(['cold', 'nochange', 'changed'] as const).flatMap((scenario) => scaled[scenario].map((s) => s.peakRssKiB))) / 1024;
    lines.push(
      `peak RSS under 160 MiB at ${report.scaling.tree.files.toLocaleString('en-US')} files ((a), (b), (c)): highest ${highest.toFixed(0)} MiB → ${verdict(highest < 160)}`,
    );
  }
  return lines.map((line) => `- ${line}`);
}

// (d) against rclone, the restore without a bundle (a crashed pod's successor), hydrate's
// memory, and what the final sync that wrote the bundle cost the previous pod.
function restoreTargets(report: AgentReport, wall: (id: string, scenario: Scenario) => number | undefined): string[] {
  const lines: string[] = [];
  const byId = new Map(report.tools.map((tool) => [tool.id, tool]));
  const [mine, rclone, s5cmd, crashed] = [wall('ours', 'restore'), wall('rclone', 'restore'), wall('s5cmd', 'restore'), wall('ours-crashed', 'restore')];
  if (mine !== undefined && rclone !== undefined) {
    lines.push(`(d) at least 2× faster than rclone (defaults): ours ÷ rclone = ${ratio(mine, rclone)} → ${verdict(mine <= rclone * 0.5)}`);
  }
  if (crashed !== undefined) {
    const peers = [s5cmd === undefined ? '' : `, ÷ s5cmd = ${ratio(crashed, s5cmd)}`, rclone === undefined ? '' : `, ÷ rclone = ${ratio(crashed, rclone)}`];
    lines.push(`(d) without a bundle (crashed pod, per-object restore): ${seconds(crashed)}${peers.join('')}`);
  }
  for (const id of ['ours', 'ours-crashed']) {
    const rss = medianRssMiB(byId.get(id)?.samples.restore ?? []);
    if (rss !== undefined) lines.push(`(d) hydrate peak RSS under 128 MiB (${id}): ${rss.toFixed(0)} MiB → ${verdict(rss < 128)}`);
  }
  const finals = byId.get('ours')?.finalSyncs ?? [];
  if (finals.length > 0) {
    const middle = finals[medianIndex(finals.map((final) => final.wallSeconds))]!;
    lines.push(
      `final sync before (d), untimed there (\`sync --once\`, nothing to upload, incl. the bundle): ${seconds(middle.wallSeconds)}, bundle: ${middle.bundle ?? 'not written'}`,
    );
    const rss = finals.flatMap((final) => (final.peakRssKiB === undefined ? [] : [final.peakRssKiB / 1024]));
    if (rss.length > 0) lines.push(`final sync before (d) peak RSS under 128 MiB: ${median(rss).toFixed(0)} MiB → ${verdict(median(rss) < 128)}`);
  }
  return lines;
}

function scalingTable(report: AgentReport): string | undefined {
  const ours = report.tools.find((tool) => tool.id === 'ours');
  if (!ours || !report.scaling) return undefined;
  const row = (label: string, runs: ToolRuns) => [
    label,
    ...(['cold', 'nochange', 'changed'] as const).flatMap((scenario) => {
      const wall = medianWall(runs.samples[scenario]);
      const rss = medianRssMiB(runs.samples[scenario]);
      return [wall === undefined ? '–' : seconds(wall), rss === undefined ? '–' : rss.toFixed(0)];
    }),
    requestSummary(representative(runs.samples.changed)),
  ];
  return table(
    ['tree', '(a) time', '(a) RSS MiB', '(b) time', '(b) RSS MiB', '(c) time', '(c) RSS MiB', '(c) requests'],
    [row(report.tree.description, ours), row(report.scaling.tree.description, report.scaling.ours)],
  );
}

export function renderAgentReport(report: AgentReport): string {
  const m = report.machine;
  const scaling = scalingTable(report);
  return [
    '## Agent: sync and restore against rclone, aws-cli and s5cmd',
    '',
    `Command: \`${report.command}\` at commit ${m.commit}, ${report.startedAt} → ${report.finishedAt}.`,
    `Machine: ${m.cpu}, ${m.cores} cores, ${m.memoryGiB} GiB, ${m.kernel}, Node ${m.node}; load average ${m.loadAverage} at the start, ${report.loadAverageAtEnd} at the end (the machine is shared, so absolute times are noisy; every tool ran in turn in each round).`,
    `Versions: ${Object.entries(report.versions).map(([name, version]) => `${name} ${version}`).join(', ')}.`,
    `Tree: ${report.tree.description} (${(report.tree.bytes / MiB).toFixed(0)} MiB); (c) rewrites ${report.tree.changedFiles} of the small files. One MinIO on 127.0.0.1, a fresh prefix per tool and run; median of ${report.runs} runs. Every restore was checked byte for byte against the workspace.${cleanupText(report.cleanup)} Ours used ${report.workers} parallel transfers; the second row of each peer uses the same.${report.imageEnv ? ` Ours ran with the image's environment: ${Object.entries(report.imageEnv).map(([name, value]) => `\`${name}=${value}\``).join(', ')}.` : ''}`,
    '',
    '### Wall time (ours ÷ peer in brackets: below 1 means ours is faster)',
    '',
    wallTable(report),
    '',
    '### S3 requests (from MinIO\'s own counters, the run with the median time)',
    '',
    requestTable(report),
    '',
    '### Peak RSS of the process (MiB, median)',
    '',
    rssTable(report),
    '',
    '### Targets',
    '',
    ...targets(report),
    ...(report.risk ? ['', '### Data at risk, and what keeping it low costs per hour', '', riskMethod(report.risk), '', renderRiskTable(report.risk)] : []),
    ...(scaling ? ['', '### Scaling (ours only, one run at the larger size)', '', scaling] : []),
    '',
  ].join('\n');
}

/** The README's compact form: scenarios down, tools across, ratios beside the peers' times. */
export function renderAgentSummary(report: AgentReport): string {
  const ours = report.tools.find((tool) => tool.id === 'ours');
  const header = ['', ...report.tools.map((tool) => (tool.id === 'ours' ? '**ours**' : tool.id))];
  const rows = SCENARIOS.map((scenario) => [
    SCENARIO_TITLES[scenario],
    ...report.tools.map((tool) => {
      const wall = medianWall(tool.samples[scenario]);
      if (wall === undefined) return '–';
      const oursWall = ours && tool !== ours ? medianWall(ours.samples[scenario]) : undefined;
      return oursWall === undefined ? `**${seconds(wall)}**` : `${seconds(wall)} (${ratio(oursWall, wall)})`;
    }),
  ]);
  const requests = (['nochange', 'changed'] as const).map((scenario) => [
    `${SCENARIO_TITLES[scenario].split(' ')[0]} requests`,
    ...report.tools.map((tool) => requestSummary(representative(tool.samples[scenario]))),
  ]);
  const rss = [
    'peak RSS, MiB (a/b/c/d)',
    ...report.tools.map((tool) =>
      SCENARIOS.map((scenario) => medianRssMiB(tool.samples[scenario])?.toFixed(0) ?? '–').join(' / '),
    ),
  ];
  return table(header, [...rows, ...requests, rss]);
}

// Why it matters: bench/agent-bench.ts, RunTrash.
function cleanupText(cleanup: AgentReport['cleanup']): string {
  if (!cleanup) return '';
  const kept = " Each run's files were moved aside and deleted after the last run, so no run created files within minutes of a mass deletion (on a journal-less ext4, as this VM's is, one slows file creation for a minute or more after it)";
  return cleanup.removedAtOnce === 0 ? `${kept}.` : `${kept}, except ${cleanup.removedAtOnce} run(s) deleted at once when the disk ran short.`;
}
