#!/usr/bin/env bash
# Builds (or reuses) the tools the tests run over files no engine here can execute:
# actionlint for the release workflow, helm for the chart, promtool for the alert rules.
# Same pattern as the servers: a pinned Go module version, built into .cache/bin/, rebuilt
# only when the pin changes.
set -euo pipefail
cd "$(dirname "$0")/.."

ACTIONLINT_VERSION=v1.7.12
HELM_VERSION=v3.22.0
# Prometheus' Go module versions are v0.MAJOR.MINOR: v0.316.0 is Prometheus 3.16.0.
PROMETHEUS_VERSION=v0.316.0
BIN_DIR="$PWD/.cache/bin"
mkdir -p "$BIN_DIR"

# build_tool NAME VERSION PACKAGE [LDFLAGS] [NOTE]
build_tool() {
  local name=$1 version=$2 package=$3 ldflags=${4:-} note=${5:-}
  if [ -x "$BIN_DIR/$name" ] && [ "$(cat "$BIN_DIR/$name.version" 2>/dev/null)" = "$version" ]; then
    echo "build-tools: reusing $name $version"
    return
  fi
  echo "build-tools: building $name $version${note:+ ($note)}"
  rm -f "$BIN_DIR/$name.version"
  CGO_ENABLED=0 GOBIN="$BIN_DIR" go install -trimpath -ldflags "$ldflags" "$package@$version"
  echo "$version" >"$BIN_DIR/$name.version"
}

build_tool actionlint "$ACTIONLINT_VERSION" github.com/rhysd/actionlint/cmd/actionlint
build_tool helm "$HELM_VERSION" helm.sh/helm/v3/cmd/helm \
  "-X helm.sh/helm/v3/internal/version.version=$HELM_VERSION" "about 3 minutes of CPU"
build_tool promtool "$PROMETHEUS_VERSION" github.com/prometheus/prometheus/cmd/promtool \
  "" "the longest build here: about 9 minutes of CPU"
