#!/usr/bin/env bash
# Builds (or reuses) the MinIO server and the small admin helper the integration tests
# use for users and policies, into .cache/bin/. MinIO is distributed as source, so the
# server is built from its Go module at a pinned pseudo-version; the recorded version
# file makes a rebuild happen only when the pin changes.
set -euo pipefail
cd "$(dirname "$0")/.."

MINIO_VERSION="v0.0.0-20260212201848-7aac2a2c5b7c"
BIN_DIR="$PWD/.cache/bin"
mkdir -p "$BIN_DIR"

fail() {
  echo "build-minio: $*" >&2
  exit 1
}

command -v go >/dev/null 2>&1 || fail "go toolchain not found: install Go >= 1.24 to build MinIO"

export CGO_ENABLED=0
export GOFLAGS="-trimpath"

if [ -x "$BIN_DIR/minio" ] && [ "$(cat "$BIN_DIR/minio.version" 2>/dev/null)" = "$MINIO_VERSION" ]; then
  echo "build-minio: reusing minio $MINIO_VERSION"
else
  echo "build-minio: building minio $MINIO_VERSION (several minutes on a cold cache)"
  rm -f "$BIN_DIR/minio.version"
  GOBIN="$BIN_DIR" go install "github.com/minio/minio@$MINIO_VERSION" || fail "go install of minio failed"
  echo "$MINIO_VERSION" >"$BIN_DIR/minio.version"
fi

# The admin helper is a tiny module of this repository; its version is the hash of its
# sources, so an edit rebuilds it.
ADMIN_SRC="scripts/minio-admin"
ADMIN_VERSION="$(cat "$ADMIN_SRC/go.mod" "$ADMIN_SRC/go.sum" "$ADMIN_SRC/main.go" | sha256sum | cut -d' ' -f1)"
if [ -x "$BIN_DIR/minio-admin" ] && [ "$(cat "$BIN_DIR/minio-admin.version" 2>/dev/null)" = "$ADMIN_VERSION" ]; then
  echo "build-minio: reusing minio-admin"
else
  echo "build-minio: building minio-admin"
  rm -f "$BIN_DIR/minio-admin.version"
  (cd "$ADMIN_SRC" && go build -o "$BIN_DIR/minio-admin" .) || fail "build of minio-admin failed"
  echo "$ADMIN_VERSION" >"$BIN_DIR/minio-admin.version"
fi
