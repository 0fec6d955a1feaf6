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
    .command('inject')
    .description('mutate a Pod manifest offline, exactly as the webhook would')
    .requiredOption('-f, --filename <file>', 'Pod manifest (YAML or JSON); "-" reads stdin')
    .option('--secret <file>', 'integration Secret manifest (without it the secret counts as absent)')
    .option('--namespace <ns>', "namespace of the pod (default: the pod's, then the secret's)")
    .option('-o, --output <format>', 'output format: yaml or json', 'yaml')
    .action(
      async (options: { filename: string; secret?: string; namespace?: string; output: string }) => {
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

  program
    .command('certs')
    .description('generate a CA and a serving certificate for the webhook service; prints the caBundle')
    .requiredOption('--service <name>', 'name of the webhook Service')
    .requiredOption('--namespace <ns>', 'namespace of the webhook Service')
    .option('--dev', 'also valid for localhost and 127.0.0.1 (local runs)', false)
    .option('--out <dir>', 'output directory', 'certs')
    .action(async (options: { service: string; namespace: string; dev: boolean; out: string }) => {
      const { runCerts } = await import('./certs-command.js');
      process.exitCode = await runCerts(options);
    });
}
