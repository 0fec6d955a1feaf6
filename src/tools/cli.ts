import type { Command } from 'commander';

// The tools a user runs from a laptop against a project: they read the namespace's
// integration secret through the user's kubeconfig and load the Kubernetes client and the
// S3 SDK only when they run.
function kubeOptions(command: Command): Command {
  return command
    .option('--kubeconfig <file>', 'kubeconfig to use (default: $KUBECONFIG, then ~/.kube/config)')
    .option('--context <name>', 'kubeconfig context to use');
}

export function registerToolCommands(program: Command): void {
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
}
