#!/usr/bin/env node
import { Command } from 'commander';
import { VERSION } from './shared/version.js';
import { registerWebhookCommands } from './webhook/cli.js';
import { registerAgentCommands } from './agent/cli.js';

// One binary for both images: the webhook subcommands (webhook, inject, certs) and the
// agent subcommands (hydrate, sync). Each side registers its own commands and loads its
// heavy dependencies lazily, so `hydrate` never loads express and `webhook` never loads
// the S3 SDK.
const program = new Command()
  .name('session-storage')
  .description('Session storage for Ambient Code Platform session pods')
  .version(VERSION);

registerWebhookCommands(program);
registerAgentCommands(program);

await program.parseAsync(process.argv);
