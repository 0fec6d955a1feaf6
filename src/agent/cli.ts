import type { Command } from 'commander';

// The agent commands load the S3 store only when they run, so the webhook side of the
// shared binary never pays for it.
export function registerAgentCommands(program: Command): void {
  program
    .command('hydrate')
    .description('restore the session state from S3 into the workspace (init container)')
    .action(async () => {
      const { runHydrateCommand } = await import('./commands/hydrate-command.js');
      process.exitCode = await runHydrateCommand();
    });

  program
    .command('sync')
    .description('upload workspace changes to S3 every SYNC_INTERVAL seconds (sidecar)')
    .option('--once', 'run one sync cycle and exit')
    .action(async (options: { once?: boolean }) => {
      const { runSyncCommand } = await import('./commands/sync-command.js');
      process.exitCode = await runSyncCommand({ once: options.once === true });
    });

  program
    .command('sync-now')
    .description('ask the running state-sync sidecar for a sync cycle now (run in its container)')
    .action(async () => {
      const { runSyncNow } = await import('./commands/sync-now.js');
      process.exitCode = await runSyncNow();
    });
}
