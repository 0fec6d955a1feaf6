#!/usr/bin/env node
import { runCli } from './program.js';

// Installed as `kubectl-session_storage` (package.json bin): kubectl runs any executable
// named kubectl-* on PATH as a plugin, mapping `kubectl session-storage` to it.
await runCli('kubectl session-storage');
