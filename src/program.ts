import { Command } from 'commander';
import { quietDependencyDeprecations } from './shared/dependency-warnings.js';
import { VERSION } from './shared/version.js';
import { registerAgentCommands } from './agent/cli.js';
import { registerToolCommands } from './tools/cli.js';
import { registerWebhookCommands } from './webhook/cli.js';

// One binary for both images and the user's laptop: the webhook subcommands (webhook,
// certs), the agent subcommands (hydrate, sync) and the tools (inject, migrate-job, ls,
// get, check).
// Each side registers its own commands and loads its heavy dependencies lazily, so
// `hydrate` never loads express and `webhook` never loads the S3 SDK.
export async function runCli(name: string): Promise<void> {
  quietDependencyDeprecations();
  const program = new Command()
    .name(name)
    .description('Session storage for Ambient Code Platform session pods')
    .version(VERSION)
    // A usage error (unknown option, missing argument) exits 2, apart from a command's
    // own failure (1); set before the subcommands so they inherit it.
    .exitOverride((error) => process.exit(error.exitCode === 0 ? 0 : 2));

  registerWebhookCommands(program);
  registerAgentCommands(program);
  registerToolCommands(program);

  await program.parseAsync(process.argv);
}
