#!/usr/bin/env bash
# Builds (or reuses, when the recorded version matches) every server the tests need into
# .cache/bin/, from Go modules, and installs Debian's rclone (the platform's sync tool). The
# node tier's pieces come after the control plane: they share its k8s.io/kubernetes wrapper
# module and Go build cache.
# Each script is idempotent.
set -euo pipefail
cd "$(dirname "$0")/.."
for builder in scripts/build-minio.sh scripts/build-control-plane.sh scripts/build-node.sh scripts/build-tools.sh scripts/install-rclone.sh; do
  if [ -f "$builder" ]; then
    bash "$builder"
  fi
done
