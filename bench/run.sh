#!/usr/bin/env bash
# `npm run bench` (after `npm run build`): installs or reuses the peers and MinIO, compiles
# the harness and runs it; arguments go to the harness (`npm run bench -- --help`).
# Not part of `npm test` or CI: it installs Debian packages and takes tens of minutes.
set -euo pipefail
cd "$(dirname "$0")/.."

bash scripts/install-bench-peers.sh
bash scripts/build-minio.sh
npx tsc -p bench/tsconfig.json
exec node bench/work/build/bench/main.js "$@"
