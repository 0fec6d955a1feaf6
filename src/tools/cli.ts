import type { Command } from 'commander';
// Types only: erased at build time, so the lazy imports below stay lazy.
import type { InjectOptions } from './inject-command.js';
import { registerRetentionCommands } from './retention-cli.js';

// The tools a user runs from a laptop: inject and migrate-job work offline on manifests,
// exactly as the webhook would; ls, get and check read a project's integration secret
// through the user's kubeconfig. Each loads the Kubernetes client and the S3 store only
// when it runs.
function kubeOptions(command: Command): Command {
  return command
    .option('--kubeconfig <file>', 'kubeconfig to use (default: $KUBECONFIG, then ~/.kube/config)')
    .option('--context <name>', 'kubeconfig context to use');
}

export function registerToolCommands(program: Command): void {
  registerManifestTools(program);
  registerSessionTools(program);
}

// Offline: manifests in, manifests out.
function registerManifestTools(program: Command): void {
  program
    .command('inject')
    .description('mutate Pod manifests offline, exactly as the webhook would (like istioctl kube-inject)')
    .requiredOption('-f, --filename <file>', 'manifests (YAML stream or JSON); "-" reads stdin; objects without a pod pass through')
    .option('--secret <file>', 'integration Secret manifest (without it or --secret-from-cluster the secret counts as absent)')
    .option('--secret-from-cluster', "read each namespace's integration secret from the cluster (your kubeconfig)")
    .option('--kubeconfig <file>', 'kubeconfig for --secret-from-cluster (default: $KUBECONFIG, then ~/.kube/config)')
    .option('--context <name>', 'kubeconfig context for --secret-from-cluster')
    .option('-n, --namespace <ns>', "namespace of the pods (default: each manifest's, then the secret's, then default)")
    .option('-o, --output <format>', 'output format: yaml or json', 'yaml')
    .action(
      async (options: InjectOptions) => {
        const { runInject } = await import('./inject-command.js');
        process.exitCode = await runInject(options);
      },
    );

  program
    .command('migrate-job')
    .description("print a Job that copies a PVC session's files to S3, so its next pod uses S3")
    .requiredOption('-f, --filename <file>', "the session's Pod manifest (kubectl get pod NAME -o yaml)")
    .requiredOption('--secret <file>', "the namespace's integration Secret manifest")
    .option('-o, --output <format>', 'output format: yaml or json', 'yaml')
    .action(async (options: { filename: string; secret: string; output: string }) => {
      const { runMigrateJob } = await import('./migrate-job-command.js');
      process.exitCode = await runMigrateJob(options);
    });
}

// A project's secret through the user's kubeconfig, then S3.
function registerSessionTools(program: Command): void {
  kubeOptions(
    program
      .command('ls')
      .description("list a session's saved files (artifacts first) from S3, read with the namespace's own settings")
      .argument('<namespace/session>', 'the session, as NAMESPACE/SESSION')
      .argument('[path]', 'a file or folder of the session, such as artifacts')
      .option('--json', 'print JSON instead of a table'),
  ).action(async (ref: string, path: string | undefined, options: { json?: boolean; kubeconfig?: string; context?: string }) => {
    const { runLs } = await import('./ls-command.js');
    process.exitCode = await runLs(ref, path, options);
  });

  kubeOptions(
    program
      .command('get')
      .description("download a session's files or folders from S3 into a local folder")
      .argument('<namespace/session>', 'the session, as NAMESPACE/SESSION')
      .argument('<path...>', 'files or folders of the session, such as artifacts/report.md or artifacts')
      .option('-o, --output <dir>', 'folder to write into (paths below it as in the session)', '.'),
  ).action(async (ref: string, paths: string[], options: { output: string; kubeconfig?: string; context?: string }) => {
    const { runGet } = await import('./get-command.js');
    process.exitCode = await runGet(ref, paths, options);
  });

  kubeOptions(
    program
      .command('check')
      .description("check a project's S3 settings: the webhook's decision on its secret, then the agent's S3 calls; exit 0 only when sessions would hydrate and sync")
      .argument('<namespace>', 'the project namespace'),
  ).action(async (namespace: string, options: { kubeconfig?: string; context?: string }) => {
    const { runCheck } = await import('./check-command.js');
    process.exitCode = await runCheck(namespace, options);
  });

  registerRetentionCommands(program);
}
