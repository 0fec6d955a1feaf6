#!/usr/bin/env bash
# Builds (or reuses) the node tier's pieces into .cache/bin/ from their Go modules: a real
# kubelet + containerd + runc, so the tests run real pods (docs/DEVELOPMENT.md, "Node tier").
# - kubelet, kube-scheduler, kube-controller-manager from the same k8s.io/kubernetes wrapper
#   module as kube-apiserver (scripts/build-control-plane.sh writes it);
# - containerd, its runc shim and ctr; runc with seccomp (the kubelet always asks for
#   seccomp RuntimeDefault on the sandbox, and runc without seccomp refuses it);
# - the CNI bridge, loopback and host-local plugins (portmap/ipMasq need iptables: not used);
# - crictl, for the tier's teardown and for debugging;
# - scripts/node/ (our own Go module): `oci-image`, which writes image tarballs with
#   go-containerregistry (no engine), and `pause`, the sandbox's init process; only these
#   two with `build-node.sh image-tools` (what `npm run image` needs).
# Each binary is reused when its stamp (module version + Go version) matches.
set -euo pipefail
cd "$(dirname "$0")/.."

K8S_VERSION="${K8S_VERSION:-v1.36.3}"
CONTAINERD_VERSION=v2.4.2
RUNC_VERSION=v1.5.3
CNI_VERSION=v1.10.0
CRICTL_VERSION=v1.37.0
ROOT="$PWD"
BIN="$ROOT/.cache/bin"
GO_VERSION="$(go env GOVERSION)"
mkdir -p "$BIN" "$BIN/cni"
export GOFLAGS="${GOFLAGS:--buildvcs=false}"

log() { printf '[build-node] %s\n' "$*" >&2; }
stamp_ok() { # $1 path of the binary, $2 expected stamp
  [ -x "$1" ] && [ "$(cat "$1.version" 2>/dev/null)" = "$2" ]
}
# install_module NAME STAMP GOBIN PACKAGE@VERSION [go install flags...]
install_module() {
  local name=$1 stamp=$2 gobin=$3 pkg=$4 start=$SECONDS
  shift 4
  if stamp_ok "$gobin/$name" "$stamp"; then log "reusing $name ($stamp)"; return; fi
  log "building $name ($stamp)"
  rm -f "$gobin/$name.version"
  GOBIN="$gobin" go install -trimpath "$@" "$pkg"
  printf '%s' "$stamp" >"$gobin/$name.version"
  log "built $name in $((SECONDS - start))s"
}

# runc links libseccomp through cgo. The machine has Debian's libseccomp.so.2 but no
# development package, so the header comes from the upstream C source of the same version
# (served by the Go module proxy as a +incompatible module). Go's build cache does not key
# a package on what pkg-config prints, only on CGO_* variables: a .pc naming this checkout's
# path was once replayed into another checkout's link ("cannot find -lseccomp"). So the .pc
# is empty (libseccomp-golang's `#cgo pkg-config` only needs it to exist) and the flags go
# through CGO_CFLAGS/CGO_LDFLAGS, which the cache hashes; the library is named by its
# soname, from the linker's default path.
seccomp_dev() {
  local so version dir src
  so="$(ls /usr/lib/x86_64-linux-gnu/libseccomp.so.2.* /usr/lib64/libseccomp.so.2.* 2>/dev/null | head -1)"
  [ -n "$so" ] || { log "libseccomp.so.2 not found (apt-get install libseccomp2)"; exit 1; }
  version="${so##*.so.}"
  dir="$ROOT/.cache/libseccomp-$version"
  # .ready holds the layout's version: a directory of an older layout is rebuilt.
  if [ "$(cat "$dir/.ready" 2>/dev/null)" != 2 ]; then
    rm -rf "$dir" && mkdir -p "$dir/include"
    src="$(cd "$ROOT/scripts/node" && go mod download -json "github.com/seccomp/libseccomp@v$version+incompatible" |
      sed -n 's/^[[:space:]]*"Dir": "\(.*\)",\{0,1\}$/\1/p')"
    [ -f "$src/include/seccomp.h.in" ] || { log "no seccomp.h.in in libseccomp v$version"; exit 1; }
    IFS=. read -r major minor micro <<<"$version"
    sed -e "s/@VERSION_MAJOR@/$major/" -e "s/@VERSION_MINOR@/$minor/" -e "s/@VERSION_MICRO@/$micro/" \
      "$src/include/seccomp.h.in" >"$dir/include/seccomp.h"
    cp "$src/include/seccomp-syscalls.h" "$dir/include/"
    printf 'Name: libseccomp\nDescription: seccomp (flags in CGO_CFLAGS/CGO_LDFLAGS)\nVersion: %s\nCflags:\nLibs:\n' \
      "$version" >"$dir/libseccomp.pc"
    echo 2 >"$dir/.ready"
  fi
  printf '%s' "$dir"
}

# Our own Go module: its go.sum pins go-containerregistry; rebuilt when its sources change.
NODE_TOOLS_STAMP="node-tools $(cat scripts/node/go.mod scripts/node/go.sum scripts/node/*/*.go | sha256sum | cut -c1-16) $GO_VERSION"
for tool in oci-image pause; do
  if stamp_ok "$BIN/$tool" "$NODE_TOOLS_STAMP"; then log "reusing $tool"; continue; fi
  (cd scripts/node && CGO_ENABLED=0 go build -trimpath -ldflags "-s -w" -o "$BIN/$tool" "./$tool")
  printf '%s' "$NODE_TOOLS_STAMP" >"$BIN/$tool.version"
  log "built $tool"
done

# `build-node.sh image-tools` (npm run image) stops here: the image needs nothing else.
[ "${1:-}" != image-tools ] || exit 0

# Non-Kubernetes pieces first: they are small, and need no wrapper module.
SECCOMP="$(seccomp_dev)"
PKG_CONFIG_PATH="$SECCOMP" CGO_CFLAGS="-O2 -g -I$SECCOMP/include" CGO_LDFLAGS="-O2 -g -l:libseccomp.so.2" \
  CGO_ENABLED=1 install_module runc "runc $RUNC_VERSION seccomp $GO_VERSION" "$BIN" \
  "github.com/opencontainers/runc@$RUNC_VERSION" -tags "seccomp urfave_cli_no_docs"

export CGO_ENABLED=0
for cmd in containerd containerd-shim-runc-v2 ctr; do
  install_module "$cmd" "$cmd $CONTAINERD_VERSION $GO_VERSION" "$BIN" \
    "github.com/containerd/containerd/v2/cmd/$cmd@$CONTAINERD_VERSION" -tags no_btrfs \
    -ldflags "-X github.com/containerd/containerd/v2/version.Version=$CONTAINERD_VERSION"
done
for plugin in main/bridge main/loopback ipam/host-local; do
  install_module "${plugin#*/}" "cni ${plugin#*/} $CNI_VERSION $GO_VERSION" "$BIN/cni" \
    "github.com/containernetworking/plugins/plugins/$plugin@$CNI_VERSION"
done
install_module crictl "crictl $CRICTL_VERSION $GO_VERSION" "$BIN" "sigs.k8s.io/cri-tools/cmd/crictl@$CRICTL_VERSION"

# The Kubernetes node and controllers, from build-control-plane.sh's wrapper module (run by
# npm run deps before this script); its go.mod gains these commands' requirements once.
WRAP="$ROOT/.cache/control-plane/kubernetes-$K8S_VERSION"
[ -f "$WRAP/.ready" ] || { log "run scripts/build-control-plane.sh first (no wrapper module in $WRAP)"; exit 1; }
if [ ! -f "$WRAP/.node-ready" ]; then
  (cd "$WRAP" && go get "k8s.io/kubernetes/cmd/kubelet@$K8S_VERSION" \
    "k8s.io/kubernetes/cmd/kube-scheduler@$K8S_VERSION" "k8s.io/kubernetes/cmd/kube-controller-manager@$K8S_VERSION")
  touch "$WRAP/.node-ready"
fi
pkg=k8s.io/component-base/version
K8S_LDFLAGS="-s -w -X $pkg.gitVersion=$K8S_VERSION -X $pkg.gitMajor=1 -X $pkg.gitMinor=$(echo "$K8S_VERSION" | cut -d. -f2)"
for cmd in kubelet kube-scheduler kube-controller-manager; do
  stamp="$cmd $K8S_VERSION $GO_VERSION"
  if stamp_ok "$BIN/$cmd" "$stamp"; then log "reusing $cmd ($stamp)"; continue; fi
  start=$SECONDS
  log "building $cmd ($stamp)"
  (cd "$WRAP" && go build -trimpath -ldflags "$K8S_LDFLAGS" -o "$BIN/$cmd.tmp" "k8s.io/kubernetes/cmd/$cmd")
  mv -f "$BIN/$cmd.tmp" "$BIN/$cmd"
  printf '%s' "$stamp" >"$BIN/$cmd.version"
  log "built $cmd in $((SECONDS - start))s"
done
