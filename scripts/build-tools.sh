#!/usr/bin/env bash
# Builds (or reuses) the linters the tests run over files no engine here can execute:
# actionlint for the release workflow. Same pattern as the servers: a pinned Go module
# version, built into .cache/bin/, rebuilt only when the pin changes.
set -euo pipefail
cd "$(dirname "$0")/.."

ACTIONLINT_VERSION=v1.7.12
BIN_DIR="$PWD/.cache/bin"
mkdir -p "$BIN_DIR"

if [ -x "$BIN_DIR/actionlint" ] && [ "$(cat "$BIN_DIR/actionlint.version" 2>/dev/null)" = "$ACTIONLINT_VERSION" ]; then
  echo "build-tools: reusing actionlint $ACTIONLINT_VERSION"
else
  echo "build-tools: building actionlint $ACTIONLINT_VERSION"
  rm -f "$BIN_DIR/actionlint.version"
  CGO_ENABLED=0 GOBIN="$BIN_DIR" go install -trimpath "github.com/rhysd/actionlint/cmd/actionlint@$ACTIONLINT_VERSION"
  echo "$ACTIONLINT_VERSION" >"$BIN_DIR/actionlint.version"
fi
