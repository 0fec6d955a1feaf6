import { existsSync } from 'node:fs';
import { mkdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { Command, InvalidArgumentError } from 'commander';
import { TRANSFER_WORKERS } from '../src/agent/commands/runtime.js';
import { benchAgent, type RunTrash } from './agent-bench.js';
import { benchDataAtRisk, type RiskReport } from './risk-bench.js';
import { describeMachine, toolVersion } from './lib/machine.js';
import { CreateBucketCommand } from '@aws-sdk/client-s3';
import { rootClient, startMinio, type MinioInfo } from '../scripts/lib/minio.js';
import { renderAgentReport, renderAgentSummary, targets, type AgentReport } from './lib/report-agent.js';
import { renderWebhookReport, renderWebhookSummary } from './lib/report-webhook.js';
import { renderRiskTable } from './lib/report-risk.js';
import { allTools, imageEnv } from './lib/tools.js';
import { generateTree, type Tree, type TreeSpec } from './lib/tree.js';
import { benchWebhook, type WebhookReport } from './webhook-bench.js';

// Compiled to bench/work/build/bench/main.js; the repository root is four levels up.
const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..', '..', '..');

const MiB = 1024 * 1024;

function count(value: string): number {
  const parsed = Number(value);
  if (!Number.isInteger(parsed) || parsed < 0) throw new InvalidArgumentError('must be a whole number');
  return parsed;
}

interface Options {
  agent: boolean;
  webhook: boolean;
  files: number;
  bigFiles: number;
  bigMib: number;
  runs: number;
  scaleFiles: number;
  workers: number;
  tools?: string;
  webhookSeconds: number;
  riskSeconds: number;
  idleSeconds: number;
  workDir: string;
}

function log(line: string): void {
  process.stderr.write(`[${new Date().toISOString()}] ${line}\n`);
}

function describeTree(spec: TreeSpec): string {
  const small = `${spec.smallFiles.toLocaleString('en-US')} × ${spec.smallBytes / 1024} KiB`;
  return spec.bigFiles > 0 ? `${small} + ${spec.bigFiles} × ${spec.bigBytes / MiB} MiB` : small;
}

// Data at risk on the rounds' tree: a writer every 2 s for --risk-seconds, then --idle-seconds idle.
function dataAtRisk(options: Options, minio: MinioInfo, tree: Tree): Promise<RiskReport> {
  return benchDataAtRisk({
    minio,
    repoRoot,
    tree,
    workDir: options.workDir,
    activeSeconds: options.riskSeconds,
    idleSeconds: options.idleSeconds,
    writeEverySeconds: 2,
    log,
  });
}

/**
 * `publish` runs once the rounds are done and again after the scaling row, so a run cut short
 * while scaling still leaves the main tables behind.
 */
async function runAgentBench(options: Options, command: string, publish: (report: AgentReport) => Promise<void>): Promise<AgentReport> {
  const binDir = path.join(repoRoot, '.cache', 'bin');
  // Its request counters are public so each tool's requests can be read from the server's
  // own accounting rather than a proxy that would slow the tools down.
  const minio = await startMinio({ dataDir: path.join(options.workDir, 'minio-data'), publicMetrics: true });
  const trash: RunTrash = { dir: path.join(options.workDir, 'trash'), movedAside: 0, removedAtOnce: 0 };
  await mkdir(trash.dir, { recursive: true });
  // A tree left by an earlier run is set aside too, not deleted just before the first run.
  const treeDir = path.join(options.workDir, 'tree');
  const setAsideTree = () =>
    rename(treeDir, path.join(trash.dir, `tree-${Date.now().toString(36)}`)).catch((error: NodeJS.ErrnoException) => {
      if (error.code !== 'ENOENT') throw error;
    });
  try {
    const bucket = 'bench';
    const client = rootClient(minio);
    await client.send(new CreateBucketCommand({ Bucket: bucket })).finally(() => client.destroy());
    const scratch = path.join(options.workDir, 'scratch');
    await mkdir(scratch, { recursive: true });
    const selected = options.tools?.split(',');
    const tools = allTools(minio, { repoRoot, s5cmd: path.join(binDir, 's5cmd') }, scratch, options.workers).filter(
      (tool) => (selected ? selected.includes(tool.id) : tool.id !== 'ours-once'),
    );
    const spec: TreeSpec = {
      smallFiles: options.files,
      smallBytes: 4096,
      bigFiles: options.bigFiles,
      bigBytes: options.bigMib * MiB,
      changedFraction: 0.01,
    };
    const startedAt = new Date().toISOString();
    const machine = describeMachine();
    log(`generating ${describeTree(spec)}`);
    await setAsideTree();
    const tree = await generateTree(treeDir, spec);
    const results = await benchAgent(tools, { minio, bucket, tree, workDir: options.workDir, runs: options.runs, restore: true, trash, log });
    const report: AgentReport = {
      command,
      startedAt,
      finishedAt: '',
      machine,
      loadAverageAtEnd: '',
      versions: {
        MinIO: (await readFile(path.join(binDir, 'minio.version'), 'utf8').catch(() => 'unknown')).trim(),
        rclone: toolVersion('/usr/bin/rclone', ['version']).replace(/^rclone /, ''),
        'aws-cli': toolVersion('/usr/bin/aws', ['--version']).split(' ')[0]!.replace('aws-cli/', ''),
        s5cmd: toolVersion(path.join(binDir, 's5cmd'), ['version']),
      },
      tree: { files: tree.files, bytes: tree.bytes, changedFiles: tree.changedFiles, description: describeTree(spec) },
      runs: options.runs,
      workers: options.workers,
      imageEnv: imageEnv(await readFile(path.join(repoRoot, 'Dockerfile'), 'utf8')),
      tools: results,
      cleanup: { movedAside: trash.movedAside, removedAtOnce: trash.removedAtOnce },
    };
    report.finishedAt = new Date().toISOString();
    report.loadAverageAtEnd = describeMachine().loadAverage;
    await publish(report);
    if (options.riskSeconds > 0) {
      report.risk = await dataAtRisk(options, minio, tree);
      await publish(report);
    }
    const ours = tools.find((tool) => tool.id === 'ours');
    if (options.scaleFiles > 0 && ours) {
      const scaleSpec: TreeSpec = { ...spec, smallFiles: options.scaleFiles, bigFiles: 0 };
      log(`scaling row: generating ${describeTree(scaleSpec)}`);
      await setAsideTree();
      const scaleTree = await generateTree(treeDir, scaleSpec);
      const [scaled] = await benchAgent([ours], { minio, bucket, tree: scaleTree, workDir: options.workDir, runs: 1, restore: false, trash, log });
      report.scaling = {
        tree: { files: scaleTree.files, bytes: scaleTree.bytes, changedFiles: scaleTree.changedFiles, description: describeTree(scaleSpec) },
        ours: scaled!,
      };
    }
    report.finishedAt = new Date().toISOString();
    report.loadAverageAtEnd = describeMachine().loadAverage;
    return report;
  } finally {
    await minio.destroy();
    await rm(trash.dir, { recursive: true, force: true });
  }
}

async function main(): Promise<void> {
  const program = new Command('bench')
    .description('benchmark the agent against rclone, aws-cli and s5cmd, and the webhook under autocannon')
    .option('--no-agent', 'skip the agent benchmark (keep its last results)')
    .option('--no-webhook', 'skip the webhook benchmark (keep its last results)')
    .option('--files <n>', 'small files (4 KiB) in the tree', count, 10_000)
    .option('--big-files <n>', 'large files in the tree', count, 10)
    .option('--big-mib <n>', 'size of each large file in MiB', count, 32)
    .option('--runs <n>', 'runs per tool (the median is reported)', count, 3)
    .option('--scale-files <n>', 'small files in the scaling row (0 skips it)', count, 100_000)
    .option('--workers <n>', "parallel transfers for the peers' second row (the agent's own)", count, TRANSFER_WORKERS)
    .option('--tools <ids>', 'only these tools (comma-separated ids: ours,ours-crashed,ours-once,s5cmd,s5cmd-N,rclone,rclone-N,aws,aws-N; default all but ours-once)')
    .option('--webhook-seconds <n>', 'length of the fixed-rate webhook run', count, 300)
    .option('--risk-seconds <n>', 'data at risk: how long the writer appends every 2 s (0 skips the rows)', count, 300)
    .option('--idle-seconds <n>', 'data at risk: the idle window after it', count, 300)
    .option('--work-dir <dir>', 'scratch space (git-ignored)', path.join(repoRoot, 'bench', 'work'));
  program.parse();
  const options = program.opts<Options>();
  const command = ['npm run bench', ...(process.argv.length > 2 ? ['--', ...process.argv.slice(2)] : [])].join(' ');
  await mkdir(options.workDir, { recursive: true });
  const agentJson = path.join(options.workDir, 'agent.json');
  const webhookJson = path.join(options.workDir, 'webhook.json');

  const publish = async (): Promise<string> => {
    const agent = existsSync(agentJson) ? (JSON.parse(await readFile(agentJson, 'utf8')) as AgentReport) : undefined;
    const webhook = existsSync(webhookJson) ? (JSON.parse(await readFile(webhookJson, 'utf8')) as WebhookReport) : undefined;
    const sections = ['# Benchmark results', '', 'Written by `npm run bench` (bench/run.sh); see docs/BENCHMARKS.md.', ''];
    if (agent) sections.push(renderAgentReport(agent));
    if (webhook) sections.push(renderWebhookReport(webhook));
    const markdown = sections.join('\n');
    await writeFile(path.join(repoRoot, 'bench', 'results.md'), markdown);
    // The compact tables the README quotes.
    const summary: string[] = [];
    if (agent) summary.push(renderAgentSummary(agent), '', ...(agent.risk ? [renderRiskTable(agent.risk), ''] : []), ...targets(agent), '');
    if (webhook) summary.push(renderWebhookSummary(webhook), '');
    await writeFile(path.join(options.workDir, 'readme-summary.md'), summary.join('\n'));
    return markdown;
  };

  if (options.agent) {
    const report = await runAgentBench(options, command, async (partial) => {
      await writeFile(agentJson, JSON.stringify(partial, null, 2));
      await publish();
    });
    await writeFile(agentJson, JSON.stringify(report, null, 2));
  }
  if (options.webhook) {
    const report = await benchWebhook({ repoRoot, workDir: options.workDir, seconds: options.webhookSeconds, command, log });
    await writeFile(webhookJson, JSON.stringify(report, null, 2));
  }
  const markdown = await publish();
  process.stdout.write(markdown);
}

main().catch((error: unknown) => {
  log(error instanceof Error ? (error.stack ?? error.message) : String(error));
  process.exit(1);
});
