import type { Command } from 'commander';

// Each action imports its implementation lazily: `session-storage hydrate` in the agent
// image must not pay for loading express, the Kubernetes client or selfsigned.
export function registerWebhookCommands(program: Command): void {
  program
    .command('webhook')
    .description('serve the mutating admission webhook over HTTPS (settings from the environment)')
    .option(
      '--secret-file <file...>',
      'read integration secrets from Secret manifests instead of the Kubernetes API (local runs)',
    )
    .action(async (options: { secretFile?: string[] }) => {
      const { runWebhook } = await import('./command.js');
      await runWebhook({ secretFiles: options.secretFile ?? [] });
    });

  program
    .command('certs')
    .description('generate a CA and a serving certificate for the webhook service; prints the caBundle')
    .requiredOption('--service <name>', 'name of the webhook Service')
    .requiredOption('--namespace <ns>', 'namespace of the webhook Service')
    .option('--dev', 'also valid for localhost and 127.0.0.1 (local runs)', false)
    .option('--out <dir>', 'output directory', 'certs')
    .action(async (options: { service: string; namespace: string; dev: boolean; out: string }) => {
      const { runCerts } = await import('./ca/certs-command.js');
      process.exitCode = await runCerts(options);
    });
}
