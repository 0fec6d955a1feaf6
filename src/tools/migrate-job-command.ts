import { readFile } from 'node:fs/promises';
import type { V1Pod } from '@kubernetes/client-node';
import { parse, stringify } from 'yaml';
import { ConfigError, loadConfig } from '../webhook/config/config.js';
import { afterMigration, buildMigrationJob, MigrationRefused } from '../webhook/mutation/migrate-job.js';
import { decideS3 } from '../webhook/config/s3-settings.js';
import { ManifestError, parseSecretManifests } from '../webhook/lookups/secret-source.js';
import { summarizeSecret } from '../webhook/config/secret-summary.js';

export interface MigrateJobOptions {
  filename: string;
  secret: string;
  output: string;
}

class InputError extends Error {}

/**
 * `session-storage migrate-job`: the Job that copies a PVC session's files to S3, printed
 * for review and `kubectl apply`; the steps after it on stderr. Exit 0 with the Job, 1
 * when the pod cannot be migrated (why, on stderr), 2 when the input is unusable.
 */
export async function runMigrateJob(options: MigrateJobOptions): Promise<number> {
  try {
    if (options.output !== 'yaml' && options.output !== 'json') {
      throw new InputError(`unknown output format "${options.output}": use yaml or json`);
    }
    const config = loadConfig();
    const pod = parse(await read(options.filename)) as V1Pod | null;
    if (pod === null || typeof pod !== 'object' || pod.kind !== 'Pod') {
      throw new InputError(`${options.filename}: expected the session's Pod manifest (kubectl get pod NAME -o yaml)`);
    }
    const secrets = parseSecretManifests(await read(options.secret), options.secret);
    if (secrets.length !== 1) throw new InputError(`${options.secret}: expected exactly one Secret manifest`);
    const namespace = pod.metadata?.namespace ?? secrets[0]!.metadata?.namespace;
    if (namespace === undefined) throw new InputError(`${options.filename}: the pod has no namespace`);
    const s3 = decideS3(summarizeSecret(secrets[0]!), config.policy);
    const result = buildMigrationJob(pod, namespace, config.mutation, s3);
    process.stdout.write(options.output === 'json' ? `${JSON.stringify(result.job, null, 2)}\n` : stringify(result.job));
    process.stderr.write(
      `Stop the session first (the Job mounts its PVC), apply this Job, then:\n${afterMigration(result)}\n`,
    );
    return 0;
  } catch (error) {
    if (error instanceof MigrationRefused) {
      process.stderr.write(`cannot migrate: ${error.message}\n`);
      return 1;
    }
    if (error instanceof InputError || error instanceof ManifestError || error instanceof ConfigError) {
      process.stderr.write(`error: ${error.message}\n`);
      return 2;
    }
    throw error;
  }
}

async function read(path: string): Promise<string> {
  try {
    return await readFile(path, 'utf8');
  } catch (error) {
    throw new InputError(`cannot read ${path}: ${(error as NodeJS.ErrnoException).code ?? String(error)}`);
  }
}
