#!/usr/bin/env bash
# The node tier's cluster on this machine: MinIO, etcd, kube-apiserver, kube-controller-manager,
# kube-scheduler, containerd and one kubelet (node "sst-node"), all from .cache/bin/
# (scripts/build-node.sh), on a private bridge the tier creates. Real pods run here.
#
#   bash scripts/node-tier.sh up STATE_DIR     # prints the env file's path; ~5-10 s
#   bash scripts/node-tier.sh down STATE_DIR   # stops what `up` started, restores the host
#
# `up` writes STATE_DIR/env (KUBECONFIG, MinIO endpoint and root keys, the sockets) for the
# tests and for a person debugging (`. STATE_DIR/env; kubectl get pods -A; crictl ps -a`).
# It records every process it starts (STATE_DIR/pids/) and what it changes on the host
# (STATE_DIR/host/), and `down` undoes exactly that: it kills only recorded PIDs, removes
# the pods' sandboxes through the tier's own containerd, unmounts what is mounted under
# STATE_DIR, removes the kubepods cgroups and the bridge if they were not there before, and
# restores net.ipv4.ip_forward. Needs root (a kubelet does).
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
BIN="$ROOT/.cache/bin"
ACTION="${1:?usage: node-tier.sh up|down STATE_DIR}"
S="${2:?usage: node-tier.sh up|down STATE_DIR}"
NODE_NAME=sst-node
BRIDGE=sst0
# A /24 of its own, away from the usual CNI (10.88/16, 10.244/16 default pod ranges).
NODE_IP=10.213.77.1
POD_SUBNET=10.213.77.0/24
PAUSE_IMAGE=localhost/session-storage-test/pause:1

log() { printf '[node-tier] %s\n' "$*" >&2; }
die() { log "$*"; exit 1; }

# start NAME LOGFILE CMD...: a recorded background process; its own process group so a
# stray signal to the test runner's group does not reach it, and so `down` finds it.
start() {
  local name=$1 logfile=$2
  shift 2
  setsid "$@" >"$logfile" 2>&1 </dev/null &
  echo $! >"$S/pids/$name"
}

wait_for() { # WHAT SECONDS CMD...
  local what=$1 timeout=$2 deadline
  shift 2
  deadline=$((SECONDS + timeout))
  until "$@" >/dev/null 2>&1; do
    for pidfile in "$S"/pids/*; do
      kill -0 "$(cat "$pidfile")" 2>/dev/null ||
        die "$what: $(basename "$pidfile") exited: $(tail -n 20 "$S/logs/$(basename "$pidfile").log" 2>/dev/null)"
    done
    [ $SECONDS -lt $deadline ] || die "$what: not ready after ${timeout}s"
    sleep 0.2
  done
}

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

certs() { # a CA and what the control plane and the kubelet need from it, with openssl
  local pki=$S/pki
  mkdir -p "$pki" && cd "$pki"
  openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 -subj /CN=sst-node-ca \
    -keyout ca.key -out ca.crt 2>/dev/null
  issue() { # NAME SUBJECT [SANS]
    openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj "$2" -keyout "$1.key" -out "$1.csr" 2>/dev/null
    if [ -n "${3:-}" ]; then printf 'subjectAltName=%s\n' "$3" >"$1.ext"; else : >"$1.ext"; fi
    openssl x509 -req -in "$1.csr" -CA ca.crt -CAkey ca.key -CAcreateserial -days 2 -extfile "$1.ext" -out "$1.crt" 2>/dev/null
  }
  issue apiserver /CN=kube-apiserver "IP:$NODE_IP,IP:127.0.0.1,IP:10.0.0.1,DNS:localhost,DNS:kubernetes,DNS:kubernetes.default.svc"
  issue admin "/O=system:masters/CN=admin"
  issue apiserver-kubelet-client "/O=system:masters/CN=kube-apiserver-kubelet-client"
  issue kubelet "/CN=$NODE_NAME" "IP:$NODE_IP"
  openssl ecparam -name prime256v1 -genkey -noout 2>/dev/null | openssl pkcs8 -topk8 -nocrypt -out sa.key
  openssl pkey -in sa.key -pubout -out sa.pub
  # Static tokens: the kubelet is a node (Node authorizer); the controllers run as
  # cluster admins rather than with per-controller service accounts (a test tier's shortcut).
  {
    echo "$(openssl rand -hex 16),system:node:$NODE_NAME,node-1,system:nodes"
    echo "$(openssl rand -hex 16),system:kube-controller-manager,kcm-1,system:masters"
    echo "$(openssl rand -hex 16),system:kube-scheduler,sched-1,system:masters"
  } >tokens.csv
  chmod 600 ./*.key tokens.csv
  cd - >/dev/null
}

kubeconfig() { # FILE USER (token|cert:NAME)
  local file=$1 user=$2 cred=$3
  {
    printf 'apiVersion: v1\nkind: Config\ncurrent-context: sst\n'
    printf 'clusters:\n- name: sst\n  cluster:\n    server: https://%s:%s\n    certificate-authority: %s\n' "$NODE_IP" "$API_PORT" "$S/pki/ca.crt"
    printf 'contexts:\n- name: sst\n  context: {cluster: sst, user: %s}\n' "$user"
    printf 'users:\n- name: %s\n  user:\n' "$user"
    case $cred in
      cert:*) printf '    client-certificate: %s\n    client-key: %s\n' "$S/pki/${cred#cert:}.crt" "$S/pki/${cred#cert:}.key" ;;
      *) printf '    token: %s\n' "$cred" ;;
    esac
  } >"$file"
  chmod 600 "$file"
}

up() {
  [ "$(id -u)" = 0 ] || die "the node tier needs root (kubelet, containerd, runc)"
  for b in minio etcd kube-apiserver kube-controller-manager kube-scheduler kubelet containerd containerd-shim-runc-v2 ctr runc crictl oci-image pause cni/bridge cni/loopback cni/host-local; do
    [ -x "$BIN/$b" ] || die "$BIN/$b is missing: run \`npm run deps\` (scripts/build-node.sh)"
  done
  [ ! -e "$S/pids" ] || die "$S is in use: run \`node-tier.sh down $S\` first"
  mkdir -p "$S"/{pids,logs,host,cni/net.d,kubelet,kubelet-pki,pod-logs,volume-plugins,images}
  S="$(cd "$S" && pwd)"
  export PATH="$BIN:$PATH"

  # What the host had before, so `down` restores exactly that.
  cat /proc/sys/net/ipv4/ip_forward >"$S/host/ip_forward"
  for d in /var/lib/kubelet /var/lib/kubelet/device-plugins /var/log/containers /var/log/pods; do
    [ -e "$d" ] || echo "$d" >>"$S/host/created-dirs"
  done
  # kubepods (the kubelet's, cgroupfs driver) and k8s.io (containerd's default parent).
  for c in /sys/fs/cgroup/*/ /sys/fs/cgroup/unified/; do
    for name in kubepods k8s.io; do
      [ -d "$c$name" ] || echo "$c$name" >>"$S/host/created-cgroups"
    done
  done
  ip link show "$BRIDGE" >/dev/null 2>&1 && die "bridge $BRIDGE exists already (another tier running?)"
  ip link add "$BRIDGE" type bridge
  echo "$BRIDGE" >"$S/host/bridge"
  ip addr add "$NODE_IP/24" dev "$BRIDGE"
  ip link set "$BRIDGE" up

  API_PORT=$(free_port) ETCD_PORT=$(free_port) PEER_PORT=$(free_port)
  KUBELET_PORT=$(free_port) MINIO_PORT=$(free_port) MINIO_CONSOLE=$(free_port)
  certs

  # MinIO on the bridge address: pods reach it there, and so do the tests on the host.
  MINIO_USER="root$(openssl rand -hex 4)" MINIO_PASS="$(openssl rand -hex 16)"
  start minio "$S/logs/minio.log" env MINIO_ROOT_USER="$MINIO_USER" MINIO_ROOT_PASSWORD="$MINIO_PASS" \
    minio server "$S/minio" --address "$NODE_IP:$MINIO_PORT" --console-address "$NODE_IP:$MINIO_CONSOLE" --quiet

  start etcd "$S/logs/etcd.log" etcd --data-dir="$S/etcd" \
    --listen-client-urls="http://127.0.0.1:$ETCD_PORT" --advertise-client-urls="http://127.0.0.1:$ETCD_PORT" \
    --listen-peer-urls="http://127.0.0.1:$PEER_PORT" --initial-advertise-peer-urls="http://127.0.0.1:$PEER_PORT" \
    --initial-cluster="default=http://127.0.0.1:$PEER_PORT" --unsafe-no-fsync --log-level=warn

  # containerd: its own root, state and sockets under STATE_DIR; the VM's limits
  # (REAL-NODE.md): no CAP_SYS_RESOURCE (restrict_oom_score_adj), cgroup v1 (cgroupfs).
  cat >"$S/containerd.toml" <<TOML
version = 4
root = "$S/containerd/root"
state = "$S/containerd/state"
[plugins.'io.containerd.server.v1.grpc']
  address = "$S/containerd.sock"
[plugins.'io.containerd.server.v1.ttrpc']
  address = "$S/containerd.sock.ttrpc"
[plugins.'io.containerd.shim.v1.manager']
  socket_dir = "$S/containerd/shims"
[plugins.'io.containerd.grpc.v1.cri']
  stream_server_address = "127.0.0.1"
  stream_server_port = "0"
[plugins.'io.containerd.cri.v1.images']
  snapshotter = "overlayfs"
  [plugins.'io.containerd.cri.v1.images'.pinned_images]
    sandbox = "$PAUSE_IMAGE"
[plugins.'io.containerd.cri.v1.runtime']
  restrict_oom_score_adj = true
  netns_mounts_under_state_dir = true
  disable_apparmor = true
  [plugins.'io.containerd.cri.v1.runtime'.cni]
    bin_dirs = ["$BIN/cni"]
    conf_dir = "$S/cni/net.d"
  [plugins.'io.containerd.cri.v1.runtime'.containerd]
    default_runtime_name = "runc"
    [plugins.'io.containerd.cri.v1.runtime'.containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      disable_pause_image_pull = true
      [plugins.'io.containerd.cri.v1.runtime'.containerd.runtimes.runc.options]
        BinaryName = "$BIN/runc"
        SystemdCgroup = false
TOML
  cat >"$S/cni/net.d/10-sst.conflist" <<JSON
{"cniVersion": "1.0.0", "name": "sst", "plugins": [
  {"type": "bridge", "bridge": "$BRIDGE", "isGateway": true, "ipMasq": false,
   "ipam": {"type": "host-local", "ranges": [[{"subnet": "$POD_SUBNET", "gateway": "$NODE_IP"}]],
            "routes": [{"dst": "0.0.0.0/0"}], "dataDir": "$S/cni/ipam"}},
  {"type": "loopback"}]}
JSON
  start containerd "$S/logs/containerd.log" containerd --config "$S/containerd.toml"
  wait_for containerd 30 ctr -a "$S/containerd.sock" version

  # The images: the pause program and the product's image (scripts/build-image.mjs).
  mkdir -p "$S/images/pause-root"
  cp "$BIN/pause" "$S/images/pause-root/pause"
  echo '{"Entrypoint": ["/pause"], "User": "65535:65535"}' >"$S/images/pause.json"
  oci-image -root "$S/images/pause-root" -config "$S/images/pause.json" -tag "$PAUSE_IMAGE" -out "$S/images/pause.tar"
  ctr -a "$S/containerd.sock" -n k8s.io images import "$S/images/pause.tar" >>"$S/logs/ctr.log" 2>&1
  if [ -n "${NODE_TIER_IMAGE:-}" ]; then
    ctr -a "$S/containerd.sock" -n k8s.io images import "$NODE_TIER_IMAGE" >>"$S/logs/ctr.log" 2>&1
  fi

  start kube-apiserver "$S/logs/kube-apiserver.log" kube-apiserver \
    --etcd-servers="http://127.0.0.1:$ETCD_PORT" --bind-address="$NODE_IP" --advertise-address="$NODE_IP" \
    --secure-port="$API_PORT" --cert-dir="$S/apiserver-certs" \
    --tls-cert-file="$S/pki/apiserver.crt" --tls-private-key-file="$S/pki/apiserver.key" \
    --client-ca-file="$S/pki/ca.crt" --token-auth-file="$S/pki/tokens.csv" \
    --authorization-mode=Node,RBAC \
    --service-account-issuer="https://$NODE_IP:$API_PORT" --service-account-key-file="$S/pki/sa.pub" \
    --service-account-signing-key-file="$S/pki/sa.key" --service-cluster-ip-range=10.0.0.0/24 \
    --allow-privileged=true \
    --kubelet-client-certificate="$S/pki/apiserver-kubelet-client.crt" \
    --kubelet-client-key="$S/pki/apiserver-kubelet-client.key" \
    --kubelet-preferred-address-types=InternalIP \
    --enable-aggregator-routing=true
  # --enable-aggregator-routing: there is no kube-proxy (no iptables here), so a Service's
  # ClusterIP leads nowhere; with it the API server calls webhooks (and aggregated APIs) at
  # an endpoint of their Service, and verifies the certificate for the Service's DNS name.
  kubeconfig "$S/admin.kubeconfig" admin cert:admin
  tok() { sed -n "$1p" "$S/pki/tokens.csv" | cut -d, -f1; }
  kubeconfig "$S/kubelet.kubeconfig" "system:node:$NODE_NAME" "$(tok 1)"
  kubeconfig "$S/kcm.kubeconfig" system:kube-controller-manager "$(tok 2)"
  kubeconfig "$S/scheduler.kubeconfig" system:kube-scheduler "$(tok 3)"
  wait_for kube-apiserver 90 curl -sfk --cacert "$S/pki/ca.crt" --cert "$S/pki/admin.crt" --key "$S/pki/admin.key" \
    "https://$NODE_IP:$API_PORT/readyz"

  start kube-controller-manager "$S/logs/kube-controller-manager.log" kube-controller-manager \
    --kubeconfig="$S/kcm.kubeconfig" --leader-elect=false --secure-port=0 \
    --service-account-private-key-file="$S/pki/sa.key" --root-ca-file="$S/pki/ca.crt" \
    --cluster-signing-cert-file="$S/pki/ca.crt" --cluster-signing-key-file="$S/pki/ca.key" \
    --service-cluster-ip-range=10.0.0.0/24 --allocate-node-cidrs=false
  start kube-scheduler "$S/logs/kube-scheduler.log" kube-scheduler \
    --kubeconfig="$S/scheduler.kubeconfig" --authentication-kubeconfig="$S/scheduler.kubeconfig" \
    --authorization-kubeconfig="$S/scheduler.kubeconfig" --leader-elect=false --secure-port=0

  cat >"$S/kubelet.yaml" <<YAML
apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
failCgroupV1: false
cgroupDriver: cgroupfs
oomScoreAdj: 0
address: $NODE_IP
port: $KUBELET_PORT
readOnlyPort: 0
healthzPort: 0
tlsCertFile: $S/pki/kubelet.crt
tlsPrivateKeyFile: $S/pki/kubelet.key
authentication:
  anonymous: {enabled: false}
  webhook: {enabled: false}
  x509: {clientCAFile: $S/pki/ca.crt}
authorization: {mode: AlwaysAllow}
containerRuntimeEndpoint: unix://$S/containerd.sock
podLogsDir: $S/pod-logs
volumePluginDir: $S/volume-plugins
failSwapOn: false
resolvConf: ""
# No DNS server runs here (pods reach MinIO and the API server by address), but without a
# clusterDNS the kubelet records a MissingClusterDNS event on every pod sync, which uses up
# the per-pod event budget and drops the events the scenarios read (probe failures).
clusterDNS: [10.0.0.10]
clusterDomain: cluster.local
registerNode: true
syncFrequency: 5s
fileCheckFrequency: 5s
nodeStatusUpdateFrequency: 5s
evictionPressureTransitionPeriod: 5s
# How often the kubelet measures volumes (default 1m; each pod's measurement runs every period
# to twice that): an EmptyDir over its sizeLimit is evicted only once measured. The eviction
# manager compares measurements with the limits every 10 s (fixed in the kubelet), so the
# tier's scenario 7 sees its eviction 5-20 s after the breach.
volumeStatsAggPeriod: 5s
YAML
  start kubelet "$S/logs/kubelet.log" kubelet --config="$S/kubelet.yaml" --kubeconfig="$S/kubelet.kubeconfig" \
    --root-dir="$S/kubelet" --cert-dir="$S/kubelet-pki" --hostname-override="$NODE_NAME" --node-ip="$NODE_IP" \
    --v=2
  cat >"$S/env" <<ENV
export KUBECONFIG=$S/admin.kubeconfig
export CONTAINER_RUNTIME_ENDPOINT=unix://$S/containerd.sock
export IMAGE_SERVICE_ENDPOINT=unix://$S/containerd.sock
export CONTAINERD_ADDRESS=$S/containerd.sock
export NODE_TIER_STATE=$S
export NODE_NAME=$NODE_NAME
export NODE_IP=$NODE_IP
export API_SERVER=https://$NODE_IP:$API_PORT
export MINIO_ENDPOINT=http://$NODE_IP:$MINIO_PORT
export MINIO_ROOT_USER=$MINIO_USER
export MINIO_ROOT_PASSWORD=$MINIO_PASS
export PATH=$BIN:\$PATH
ENV
  export KUBECONFIG="$S/admin.kubeconfig"
  wait_for "node $NODE_NAME Ready" 120 sh -c \
    "kubectl get node $NODE_NAME -o jsonpath='{.status.conditions[?(@.type==\"Ready\")].status}' | grep -qx True"
  wait_for minio 30 curl -sf "http://$NODE_IP:$MINIO_PORT/minio/health/ready"
  log "up: . $S/env"
  echo "$S/env"
}

stop_pid() { # NAME: SIGTERM, then SIGKILL after 10 s, only the recorded PID
  local file="$S/pids/$1" pid
  [ -f "$file" ] || return 0
  pid=$(cat "$file")
  if kill -0 "$pid" 2>/dev/null; then
    kill -TERM "$pid" 2>/dev/null || true
    for _ in $(seq 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$pid" 2>/dev/null || true
  fi
  rm -f "$file"
}

down() {
  [ -d "$S" ] || return 0
  S="$(cd "$S" && pwd)"
  export PATH="$BIN:$PATH"
  stop_pid kubelet
  # Every sandbox of the tier's own containerd (nothing else uses its socket), then the shims
  # that served them: a shim outlives containerd, so one left behind is found by its socket
  # path under STATE_DIR, never by name alone.
  if [ -S "$S/containerd.sock" ] && [ -f "$S/pids/containerd" ]; then
    local ep="unix://$S/containerd.sock"
    for pod in $(crictl -r "$ep" pods -q 2>/dev/null); do
      crictl -r "$ep" stopp "$pod" >/dev/null 2>&1 || true
      crictl -r "$ep" rmp -f "$pod" >/dev/null 2>&1 || true
    done
  fi
  for name in kube-scheduler kube-controller-manager kube-apiserver etcd containerd minio; do stop_pid "$name"; done
  for pid in $(pgrep -f "containerd-shim-runc-v2 .*-address $S/" || true); do kill -KILL "$pid" 2>/dev/null || true; done
  # Mounts under STATE_DIR (the kubelet's root dir bind mount, pod volumes, overlay
  # snapshots, netns), deepest first.
  findmnt -rn -o TARGET | grep -F "$S/" | sort -r | while read -r target; do
    umount -l "$target" 2>/dev/null || true
  done
  # The cgroups the tier's kubelet and containerd created hold only the tier's containers: a
  # process still in one (a container whose sandbox could not be removed, e.g. crictl gone)
  # is killed before the cgroup is removed.
  if [ -f "$S/host/created-cgroups" ]; then
    while read -r cg; do
      [ -d "$cg" ] || continue
      for pid in $(find "$cg" -name cgroup.procs -exec cat {} + 2>/dev/null | sort -u); do
        kill -KILL "$pid" 2>/dev/null || true
      done
      sleep 0.5
      find "$cg" -depth -type d -exec rmdir {} \; 2>/dev/null || true
    done <"$S/host/created-cgroups"
  fi
  if [ -f "$S/host/bridge" ]; then ip link del "$(cat "$S/host/bridge")" 2>/dev/null || true; fi
  if [ -f "$S/host/ip_forward" ]; then cat "$S/host/ip_forward" >/proc/sys/net/ipv4/ip_forward; fi
  if [ -f "$S/host/created-dirs" ]; then
    sort -r "$S/host/created-dirs" | while read -r d; do rm -rf "$d"; done
  fi
  rm -rf "$S"
  log "down"
}

case $ACTION in
  up) up ;;
  down) down ;;
  *) die "usage: node-tier.sh up|down STATE_DIR" ;;
esac
