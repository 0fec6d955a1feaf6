import { inject } from 'vitest';
import { loadSettings } from '../../../src/agent/settings.js';
import { AgentStore } from '../../../src/agent/store/s3-store.js';
import { createBucket } from '../../support/minio.js';
import { agentEnv } from '../support/helpers.js';
import { objectStoreContract } from './object-store.contract.js';

const minio = inject('minio');

objectStoreContract('the S3 adapter on MinIO', async () => {
  const store = new AgentStore(loadSettings(agentEnv(minio, await createBucket(minio, 'contract'), 'contract')), 16);
  return { store, close: () => store.close() };
});
