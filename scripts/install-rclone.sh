#!/usr/bin/env bash
# Installs Debian's rclone, the tool the platform's state-sync sidecar (sync.sh) writes
# session state with. The tests write "platform state" with the real binary rather than
# imitating its object layout and x-amz-meta-mtime by hand.
set -euo pipefail

if [ -x /usr/bin/rclone ]; then
  echo "install-rclone: reusing $(/usr/bin/rclone version 2>/dev/null | head -n1)"
  exit 0
fi

command -v apt-get >/dev/null 2>&1 || {
  echo "install-rclone: apt-get not found: install rclone (>= 1.60) at /usr/bin/rclone" >&2
  exit 1
}

SUDO=""
if [ "$(id -u)" -ne 0 ]; then
  command -v sudo >/dev/null 2>&1 || {
    echo "install-rclone: not root and sudo not found: install rclone as root" >&2
    exit 1
  }
  SUDO="sudo"
fi

echo "install-rclone: installing rclone with apt-get"
$SUDO apt-get update
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y --no-install-recommends rclone
