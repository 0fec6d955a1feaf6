import type { Command } from 'commander';
// Types only: erased at build time, so the lazy imports below stay lazy.
import type { InjectOptions } from './inject-command.js';

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
