#!/usr/bin/env bash
# Builds (or reuses, when the recorded version matches) every server the tests need into
# .cache/bin/, from Go modules. Each builder script is idempotent and version-checked.
set -euo pipefail
cd "$(dirname "$0")/.."
for builder in scripts/build-minio.sh scripts/build-control-plane.sh scripts/build-tools.sh; do
  if [ -f "$builder" ]; then
    bash "$builder"
  fi
done
