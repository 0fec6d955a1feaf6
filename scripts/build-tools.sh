#!/usr/bin/env bash
# Builds (or reuses) the tools the tests run over files no engine here can execute:
# actionlint for the release workflow, helm for the chart, promtool for the alert rules. Same pattern as the servers: a pinned Go module
# version, built into .cache/bin/, rebuilt only when the pin changes.
set -euo pipefail
cd "$(dirname "$0")/.."

ACTIONLINT_VERSION=v1.7.12
HELM_VERSION=v3.22.0
# Prometheus' Go module versions are v0.MAJOR.MINOR: v0.316.0 is Prometheus 3.16.0.
PROMETHEUS_VERSION=v0.316.0
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

if [ -x "$BIN_DIR/helm" ] && [ "$(cat "$BIN_DIR/helm.version" 2>/dev/null)" = "$HELM_VERSION" ]; then
  echo "build-tools: reusing helm $HELM_VERSION"
else
  echo "build-tools: building helm $HELM_VERSION (about 3 minutes of CPU)"
  rm -f "$BIN_DIR/helm.version"
  CGO_ENABLED=0 GOBIN="$BIN_DIR" go install -trimpath \
    -ldflags "-X helm.sh/helm/v3/internal/version.version=$HELM_VERSION" \
    "helm.sh/helm/v3/cmd/helm@$HELM_VERSION"
  echo "$HELM_VERSION" >"$BIN_DIR/helm.version"
fi

if [ -x "$BIN_DIR/promtool" ] && [ "$(cat "$BIN_DIR/promtool.version" 2>/dev/null)" = "$PROMETHEUS_VERSION" ]; then
  echo "build-tools: reusing promtool $PROMETHEUS_VERSION"
else
  echo "build-tools: building promtool $PROMETHEUS_VERSION (the longest build here: many minutes on 2 cores)"
  rm -f "$BIN_DIR/promtool.version"
  CGO_ENABLED=0 GOBIN="$BIN_DIR" go install -trimpath "github.com/prometheus/prometheus/cmd/promtool@$PROMETHEUS_VERSION"
  echo "$PROMETHEUS_VERSION" >"$BIN_DIR/promtool.version"
fi
