#!/usr/bin/env bash
# Installs the tools the benchmark compares the agent with: rclone and aws-cli from Debian
# packages, s5cmd built from its Go module into .cache/bin/. Reuses whatever is present, so
# `npm run bench` can call it every time. Not part of `npm test` or CI.
set -euo pipefail
cd "$(dirname "$0")/.."

S5CMD_VERSION=v2.3.0
BIN_DIR="$PWD/.cache/bin"
mkdir -p "$BIN_DIR"

missing=()
[ -x /usr/bin/rclone ] || missing+=(rclone)
# Debian's awscli installs /usr/bin/aws; a pip or pyenv shim elsewhere on PATH is not the peer we measure.
[ -x /usr/bin/aws ] || missing+=(awscli)
[ -x /usr/bin/time ] || missing+=(time)
if [ ${#missing[@]} -gt 0 ]; then
  sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  echo "install-bench-peers: apt-get install ${missing[*]}"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

stamp="$BIN_DIR/.s5cmd-version"
if [ ! -x "$BIN_DIR/s5cmd" ] || [ "$(cat "$stamp" 2>/dev/null)" != "$S5CMD_VERSION" ]; then
  echo "install-bench-peers: building s5cmd $S5CMD_VERSION"
  # `go install MOD@VERSION` also asks the proxy for the module's version list (to check for a
  # deprecation), which the proxy here refuses; downloading the pinned version and building
  # it in place (its go.sum pins the dependencies) needs only that version.
  src="$(go mod download -json "github.com/peak/s5cmd/v2@$S5CMD_VERSION" | sed -n 's/^\t"Dir": "\(.*\)",$/\1/p')"
  [ -n "$src" ] || { echo "install-bench-peers: could not download s5cmd $S5CMD_VERSION" >&2; exit 1; }
  (cd "$src" && CGO_ENABLED=0 go build -mod=readonly -trimpath -ldflags "-X github.com/peak/s5cmd/v2/version.Version=${S5CMD_VERSION#v}" -o "$BIN_DIR/s5cmd" .)
  echo "$S5CMD_VERSION" >"$stamp"
fi

echo "install-bench-peers: rclone $(/usr/bin/rclone version | head -1 | awk '{print $2}')," \
  "$(/usr/bin/aws --version 2>&1 | awk '{print $1}')," \
  "s5cmd $("$BIN_DIR/s5cmd" version 2>/dev/null | head -1)"
