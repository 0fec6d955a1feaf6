import type { Command } from 'commander';
// Types only: erased at build time, so the lazy imports below stay lazy.
import type { GcOptions } from './gc-command.js';
import type { RmOptions } from './rm-command.js';

// A session's saved state removed whole: one session by hand (rm), or every deleted
// session past the retention (gc, also the CronJob of manifests/). Both are dry runs
// unless --yes.
export function registerRetentionCommands(program: Command): void {
  program
    .command('rm')
    .description("remove a stopped session's saved state from S3, whole (a dry run unless --yes)")
    .argument('<namespace/session>', 'the session, as NAMESPACE/SESSION')
    .option('--yes', 'remove the objects (without it: say what would be removed)')
    .option('--kubeconfig <file>', 'kubeconfig to use (default: $KUBECONFIG, then ~/.kube/config)')
    .option('--context <name>', 'kubeconfig context to use')
    .action(async (ref: string, options: RmOptions) => {
      const { runRm } = await import('./rm-command.js');
      process.exitCode = await runRm(ref, options);
    });

  program
    .command('gc')
    .description('remove the saved state of sessions whose AgenticSession is gone and whose last sync is older than the retention (a dry run unless --yes)')
    .option('--retention <duration>', 'how long a deleted session keeps its state after its last sync: 30d, 12h, 90m', '30d')
    .option('-n, --namespace <ns...>', 'only these namespaces (default: every namespace labelled ambient-code.io/session-storage=enabled)')
    .option('--yes', 'remove the objects (without it: say what would be removed)')
    .option('--kubeconfig <file>', 'kubeconfig to use (default: $KUBECONFIG, then ~/.kube/config, then the pod\'s service account)')
    .option('--context <name>', 'kubeconfig context to use')
    .action(async (options: GcOptions) => {
      const { runGc } = await import('./gc-command.js');
      process.exitCode = await runGc(options);
    });
}
