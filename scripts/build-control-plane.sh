#!/usr/bin/env bash
# Builds (or reuses) kube-apiserver and etcd into .cache/bin/ from their Go modules, and
# kubectl when the machine has none. k8s.io/kubernetes cannot be `go install`ed: its go.mod
# pins the staging modules at v0.0.0 and replaces them with ./staging/src paths, so a
# throwaway wrapper module in .cache/ requires it and replaces each staging module with
# its published v0.X.Y tag. The replace list is read from that version's own go.mod so a
# version bump needs no edit here. Each binary is reused when its stamp (module version +
# Go version) matches.
set -euo pipefail
cd "$(dirname "$0")/.."

K8S_VERSION="${K8S_VERSION:-v1.36.3}"
ETCD_VERSION="${ETCD_VERSION:-v3.6.8}"
CERT_MANAGER_VERSION="${CERT_MANAGER_VERSION:-v1.21.2}"
ROOT="$PWD"
BIN="$ROOT/.cache/bin"
WRAP="$ROOT/.cache/control-plane"
GO_VERSION="$(go env GOVERSION)"
mkdir -p "$BIN" "$WRAP"

export CGO_ENABLED=0 GOFLAGS="${GOFLAGS:--buildvcs=false}"

log() { printf '[build-control-plane] %s\n' "$*" >&2; }

stamp_ok() { # $1 binary name, $2 expected stamp
  [ -x "$BIN/$1" ] && [ -f "$BIN/$1.version" ] && [ "$(cat "$BIN/$1.version")" = "$2" ]
}

build_into() { # $1 wrapper dir, $2 package, $3 binary name, $4 stamp
  local start=$SECONDS
  log "building $3 from $2 ($4)"
  (cd "$1" && go build -trimpath -ldflags="-s -w $5" -o "$BIN/$3.tmp" "$2")
  mv -f "$BIN/$3.tmp" "$BIN/$3"
  printf '%s' "$4" >"$BIN/$3.version"
  log "built $3 in $((SECONDS - start))s"
}

k8s_wrapper() {
  local dir="$WRAP/kubernetes-$K8S_VERSION"
  if [ ! -f "$dir/.ready" ]; then
    log "generating wrapper module for k8s.io/kubernetes@$K8S_VERSION"
    rm -rf "$dir" && mkdir -p "$dir"
    local gomod staging_version
    gomod="$(cd "$dir" && go mod download -json "k8s.io/kubernetes@$K8S_VERSION" |
      sed -n 's/^[[:space:]]*"GoMod": "\(.*\)",\{0,1\}$/\1/p')"
    [ -f "$gomod" ] || { log "cannot download k8s.io/kubernetes@$K8S_VERSION"; exit 1; }
    staging_version="v0.${K8S_VERSION#v1.}"
    {
      echo "module local/kube-wrapper"
      echo
      sed -n 's/^go \([0-9.]*\)$/go \1/p' "$gomod"
      echo
      echo "replace ("
      sed -n "s#^[[:space:]]*\(k8s\.io/[A-Za-z0-9._/-]*\) => \./staging/src/.*#\t\1 => \1 $staging_version#p" "$gomod"
      echo ")"
    } >"$dir/go.mod"
    local count
    count="$(grep -c "=> k8s.io/" "$dir/go.mod" || true)"
    [ "$count" -gt 0 ] || { log "no staging replaces found in $gomod"; exit 1; }
    log "replacing $count staging modules with $staging_version"
    (cd "$dir" && go get "k8s.io/kubernetes/cmd/kube-apiserver@$K8S_VERSION" \
      "k8s.io/kubernetes/cmd/kubectl@$K8S_VERSION")
    touch "$dir/.ready"
  fi
  printf '%s' "$dir"
}

etcd_wrapper() {
  local dir="$WRAP/etcd-$ETCD_VERSION"
  if [ ! -f "$dir/.ready" ]; then
    log "generating wrapper module for go.etcd.io/etcd/server/v3@$ETCD_VERSION"
    rm -rf "$dir" && mkdir -p "$dir"
    printf 'module local/etcd-wrapper\n\ngo %s\n' "$(go env GOVERSION | sed 's/^go//')" >"$dir/go.mod"
    (cd "$dir" && go get "go.etcd.io/etcd/server/v3@$ETCD_VERSION")
    touch "$dir/.ready"
  fi
  printf '%s' "$dir"
}

k8s_ldflags() {
  # Stamps the version kube-apiserver reports, so clients' version skew checks see a real one.
  local pkg="k8s.io/component-base/version"
  printf -- '-X %s.gitVersion=%s -X %s.gitMajor=1 -X %s.gitMinor=%s' \
    "$pkg" "$K8S_VERSION" "$pkg" "$pkg" "$(echo "$K8S_VERSION" | cut -d. -f2)"
}

ETCD_STAMP="etcd $ETCD_VERSION $GO_VERSION"
if stamp_ok etcd "$ETCD_STAMP"; then
  log "reusing etcd ($ETCD_STAMP)"
else
  build_into "$(etcd_wrapper)" go.etcd.io/etcd/server/v3 etcd "$ETCD_STAMP" ""
fi

K8S_STAMP="kube-apiserver $K8S_VERSION $GO_VERSION"
if stamp_ok kube-apiserver "$K8S_STAMP"; then
  log "reusing kube-apiserver ($K8S_STAMP)"
else
  build_into "$(k8s_wrapper)" k8s.io/kubernetes/cmd/kube-apiserver kube-apiserver "$K8S_STAMP" "$(k8s_ldflags)"
fi

# The cert-manager overlay is dry-run against the API server, which needs cert-manager's
# CRDs: the real ones, as published in its Go module (deploy/crds), not hand-written.
CRDS="$ROOT/.cache/crds/cert-manager"
if [ "$(cat "$CRDS/.version" 2>/dev/null)" = "$CERT_MANAGER_VERSION" ]; then
  log "reusing cert-manager $CERT_MANAGER_VERSION CRDs"
else
  module_dir="$(cd "$WRAP" && go mod download -json "github.com/cert-manager/cert-manager@$CERT_MANAGER_VERSION" |
    sed -n 's/^[[:space:]]*"Dir": "\(.*\)",\{0,1\}$/\1/p')"
  [ -d "$module_dir/deploy/crds" ] || { log "no CRDs in cert-manager $CERT_MANAGER_VERSION"; exit 1; }
  rm -rf "$CRDS" && mkdir -p "$CRDS"
  cp "$module_dir"/deploy/crds/cert-manager.io_*.yaml "$CRDS/"
  chmod u+w "$CRDS"/*.yaml
  printf '%s' "$CERT_MANAGER_VERSION" >"$CRDS/.version"
  log "copied cert-manager $CERT_MANAGER_VERSION CRDs"
fi

# The e2e drives `kubectl apply -k`; any kubectl with kustomize will do, so a system one
# is preferred to a long extra build.
if command -v kubectl >/dev/null 2>&1 && kubectl version --client 2>/dev/null | grep -q Kustomize; then
  log "using system kubectl ($(command -v kubectl))"
  rm -f "$BIN/kubectl" "$BIN/kubectl.version"
else
  KUBECTL_STAMP="kubectl $K8S_VERSION $GO_VERSION"
  if stamp_ok kubectl "$KUBECTL_STAMP"; then
    log "reusing kubectl ($KUBECTL_STAMP)"
  else
    build_into "$(k8s_wrapper)" k8s.io/kubernetes/cmd/kubectl kubectl "$KUBECTL_STAMP" "$(k8s_ldflags)"
  fi
fi
