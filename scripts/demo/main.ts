import { parseArgs } from 'node:util';
import { wholeLife } from './life.js';
import { webhookOnly } from './webhook.js';

// `npm run demo [-- --webhook-only]`: a development script, compiled by
// scripts/demo/tsconfig.json and never part of the image.
const usage = 'usage: npm run demo [-- --webhook-only]';

async function main(): Promise<number> {
  let webhookOnlyMode: boolean;
  try {
    const { values } = parseArgs({ options: { 'webhook-only': { type: 'boolean', default: false } }, allowPositionals: false });
    webhookOnlyMode = values['webhook-only'] === true;
  } catch (error) {
    process.stderr.write(`${(error as Error).message}\n${usage}\n`);
    return 2;
  }
  const say = (line: string) => process.stdout.write(`${line}\n`);
  await (webhookOnlyMode ? webhookOnly(say) : wholeLife(say));
  return 0;
}

main().then(
  (code) => {
    process.exitCode = code;
  },
  (error: unknown) => {
    process.stderr.write(`demo failed: ${error instanceof Error ? error.message : String(error)}\n`);
    process.exitCode = 1;
  },
);
