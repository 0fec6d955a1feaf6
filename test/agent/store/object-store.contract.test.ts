import { MemoryStore } from '../support/memory-store.js';
import { objectStoreContract } from './object-store.contract.js';

objectStoreContract('the in-memory store of the unit tier', async () => ({ store: new MemoryStore(), close: () => undefined }));
