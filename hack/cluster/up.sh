#!/usr/bin/env bash
# `make cluster-up`: start a single-node Kubernetes cluster on this machine from upstream
# components built from Go modules (like Kubernetes' hack/local-up-cluster.sh): etcd,
# kube-apiserver, controller-manager, scheduler, containerd + kubelet, kube-proxy (iptables),
# metrics-server and CoreDNS, all as host processes. Needs root. State: .cluster/ in the repo;
# admin kubeconfig: .cluster/kubeconfig. Stop and clean up with hack/cluster/down.sh.
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
source "$HERE/lib.sh"

[ "$(id -u)" = 0 ] || die "cluster-up needs root (bridges, iptables, mounts, cgroups)"
if [ -d "$PIDS" ] && ls "$PIDS"/*.pid >/dev/null 2>&1; then
  # already started: fine if every process lives and the API answers, else ask for a clean-up
  for f in "$PIDS"/*.pid; do
    kill -0 "$(cat "$f")" 2>/dev/null || die "$(basename "$f" .pid) is not running; run hack/cluster/down.sh first"
  done
  kubectl_ get --raw /readyz >/dev/null 2>&1 || die "API server not ready; run hack/cluster/down.sh first"
  log "cluster already up: export KUBECONFIG=$KUBECONFIG_ADMIN"
  exit 0
fi
t0=$SECONDS
# on failure show the tail of every component log (CI has nothing else); processes keep
# running so they can be inspected: hack/cluster/down.sh stops them
on_exit() {
  local rc=$? f
  [ "$rc" = 0 ] && return 0
  for f in "$LOGS"/*.log; do
    [ -f "$f" ] || continue
    printf '\n===== %s (last 15 lines) =====\n' "$f" >&2
    tail -n 15 "$f" >&2
  done
  log "cluster-up FAILED (exit $rc); run hack/cluster/down.sh to clean up"
}
trap on_exit EXIT
mkdir -p "$CACHE" "$STATE"/{run,logs,pids,cni/net.d,cni/ipam,kubelet,etcd,bin}

bash "$HERE/deps.sh"
bash "$HERE/build.sh"
bash "$HERE/pki.sh"
PATH="$BIN:$VENV/bin:$PATH"

# handy wrappers for humans and for other scripts (ctr bound to our containerd socket)
cat >"$STATE/bin/kubectl" <<EOF
#!/bin/sh
exec "$VENV/bin/kubectl" --kubeconfig "$KUBECONFIG_ADMIN" "\$@"
EOF
cat >"$STATE/bin/ctr" <<EOF
#!/bin/sh
exec "$BIN/ctr" --address "$CONTAINERD_SOCK" --namespace k8s.io "\$@"
EOF
chmod +x "$STATE/bin/kubectl" "$STATE/bin/ctr"

# render TEMPLATE OUT: replace ${VAR} with exported variables
render() { perl -pe 's/\$\{(\w+)\}/exists $ENV{$1} ? $ENV{$1} : die "unset: $1\n"/ge' "$1" >"$2"; }
export STATE PKI BRIDGE NODE_NAME NODE_IP POD_CIDR CLUSTER_CIDR DNS_SERVICE_IP CONTAINERD_SOCK PAUSE_IMAGE
export POD_RANGE_START="${NODE_IP%.*}.10"
export CA_BUNDLE; CA_BUNDLE="$(base64 -w0 "$PKI/ca.crt")"

# --- network: a bridge that holds the node address and the pod network ---------------------
# remember host sysctls we (ip_forward) or the kubelet (kernel defaults) change: down.sh restores
if [ ! -f "$STATE/run/sysctl.orig" ]; then
  for k in net.ipv4.ip_forward vm.overcommit_memory kernel.panic kernel.panic_on_oops; do
    echo "$k=$(sysctl -n "$k")"
  done >"$STATE/run/sysctl.orig"
fi
ip link show "$BRIDGE" >/dev/null 2>&1 || ip link add "$BRIDGE" type bridge
ip addr replace "$NODE_IP/${POD_CIDR#*/}" dev "$BRIDGE"
ip link set "$BRIDGE" up
sysctl -qw net.ipv4.ip_forward=1
modprobe br_netfilter 2>/dev/null || true # for kube-proxy's rules on bridged pod-to-pod traffic
if [ -e /proc/sys/net/bridge/bridge-nf-call-iptables ]; then
  sysctl -qw net.bridge.bridge-nf-call-iptables=1
fi
render "$REPO/k8s/local-cluster/cni-bridge.conflist" "$STATE/cni/net.d/10-skserve.conflist"
# the kubelet's resolvConf: CoreDNS only, no upstream resolver, so no query leaves the machine
echo "nameserver $DNS_SERVICE_IP" >"$STATE/resolv.conf"

# --- etcd -----------------------------------------------------------------------------------
start etcd etcd --name skserve --data-dir "$STATE/etcd" \
  --listen-client-urls "http://127.0.0.1:$ETCD_PORT" --advertise-client-urls "http://127.0.0.1:$ETCD_PORT" \
  --listen-peer-urls "http://127.0.0.1:$ETCD_PEER_PORT" \
  --initial-advertise-peer-urls "http://127.0.0.1:$ETCD_PEER_PORT" \
  --initial-cluster "skserve=http://127.0.0.1:$ETCD_PEER_PORT" \
  --listen-metrics-urls "http://127.0.0.1:$((ETCD_PORT + 10))" \
  --quota-backend-bytes 4294967296 --unsafe-no-fsync
wait_for etcd 30 curl -sf "http://127.0.0.1:$ETCD_PORT/health"

# --- control plane --------------------------------------------------------------------------
start kube-apiserver kube-apiserver \
  --etcd-servers "http://127.0.0.1:$ETCD_PORT" \
  --bind-address 127.0.0.1 --secure-port "$API_PORT" --advertise-address "$NODE_IP" \
  --tls-cert-file "$PKI/apiserver.crt" --tls-private-key-file "$PKI/apiserver.key" \
  --client-ca-file "$PKI/ca.crt" \
  --authorization-mode Node,RBAC --anonymous-auth=false \
  --service-account-issuer https://kubernetes.default.svc.cluster.local \
  --service-account-key-file "$PKI/sa.pub" --service-account-signing-key-file "$PKI/sa.key" \
  --service-cluster-ip-range "$SERVICE_CIDR" --allow-privileged=true \
  --kubelet-client-certificate "$PKI/apiserver-kubelet-client.crt" \
  --kubelet-client-key "$PKI/apiserver-kubelet-client.key" \
  --kubelet-certificate-authority "$PKI/ca.crt" --kubelet-preferred-address-types InternalIP \
  --proxy-client-cert-file "$PKI/front-proxy-client.crt" --proxy-client-key-file "$PKI/front-proxy-client.key" \
  --requestheader-client-ca-file "$PKI/front-proxy-ca.crt" --requestheader-allowed-names front-proxy-client \
  --requestheader-username-headers X-Remote-User --requestheader-group-headers X-Remote-Group \
  --requestheader-extra-headers-prefix X-Remote-Extra- \
  --enable-aggregator-routing=true --endpoint-reconciler-type lease
wait_for kube-apiserver 90 kubectl_ get --raw /readyz

start kube-controller-manager kube-controller-manager \
  --kubeconfig "$STATE/kubeconfigs/controller-manager.kubeconfig" \
  --authentication-kubeconfig "$STATE/kubeconfigs/controller-manager.kubeconfig" \
  --authorization-kubeconfig "$STATE/kubeconfigs/controller-manager.kubeconfig" \
  --bind-address 127.0.0.1 --leader-elect=false --use-service-account-credentials \
  --service-account-private-key-file "$PKI/sa.key" --root-ca-file "$PKI/ca.crt" \
  --cluster-signing-cert-file "$PKI/ca.crt" --cluster-signing-key-file "$PKI/ca.key" \
  --service-cluster-ip-range "$SERVICE_CIDR" --cluster-cidr "$CLUSTER_CIDR" \
  --controllers '*,-cloud-node-lifecycle,-service,-route' \
  --flex-volume-plugin-dir "$STATE/flexvolume"
start kube-scheduler kube-scheduler \
  --kubeconfig "$STATE/kubeconfigs/scheduler.kubeconfig" \
  --authentication-kubeconfig "$STATE/kubeconfigs/scheduler.kubeconfig" \
  --authorization-kubeconfig "$STATE/kubeconfigs/scheduler.kubeconfig" \
  --bind-address 127.0.0.1 --leader-elect=false

# pods reach the API through the `kubernetes` Service (-> $NODE_IP:$API_PORT); the API server
# itself listens on 127.0.0.1 only, so forward the bridge address to it
start api-forward socat "TCP-LISTEN:$API_PORT,bind=$NODE_IP,reuseaddr,fork" "TCP:127.0.0.1:$API_PORT"

# --- containerd + images ----------------------------------------------------------------------
render "$REPO/k8s/local-cluster/containerd.toml" "$STATE/containerd.toml"
mkdir -p "$(dirname "$CONTAINERD_SOCK")"
start containerd env PATH="$BIN:/usr/sbin:/usr/bin:/sbin:/bin" containerd --config "$STATE/containerd.toml"
wait_for containerd 30 ctr_ version
for img in pause busybox; do
  tar="$CACHE/image-$img.tar"
  if [ ! -f "$tar" ]; then
    if [ "$img" = pause ]; then
      python3 "$HERE/mkimage.py" "$tar" "$PAUSE_IMAGE" /bin/sleep 2147483647
    else
      python3 "$HERE/mkimage.py" "$tar" "$BUSYBOX_IMAGE" /bin/sh
    fi
  fi
  ctr_ images import "$tar" >/dev/null
done
log "images: $(ctr_ images ls -q | tr '\n' ' ')"

# --- kubelet + kube-proxy -----------------------------------------------------------------------
render "$REPO/k8s/local-cluster/kubelet-config.yaml" "$STATE/kubelet-config.yaml"
start kubelet kubelet --config "$STATE/kubelet-config.yaml" \
  --kubeconfig "$STATE/kubeconfigs/kubelet.kubeconfig" \
  --root-dir "$STATE/kubelet" --cert-dir "$STATE/kubelet/pki" \
  --hostname-override "$NODE_NAME" --node-ip "$NODE_IP" --v 1
render "$REPO/k8s/local-cluster/kube-proxy-config.yaml" "$STATE/kube-proxy-config.yaml"
start kube-proxy kube-proxy --config "$STATE/kube-proxy-config.yaml"

# --- add-ons: metrics-server and CoreDNS as host processes ---------------------------------------
render "$REPO/k8s/local-cluster/metrics-server.yaml" "$STATE/metrics-server.yaml"
kubectl_ apply -f "$STATE/metrics-server.yaml" >>"$LOGS/addons.log" 2>&1
start metrics-server metrics-server \
  --kubeconfig "$STATE/kubeconfigs/metrics-server.kubeconfig" \
  --authentication-kubeconfig "$STATE/kubeconfigs/metrics-server.kubeconfig" \
  --authorization-kubeconfig "$STATE/kubeconfigs/metrics-server.kubeconfig" \
  --bind-address "$NODE_IP" --secure-port 4443 \
  --tls-cert-file "$PKI/metrics-server-serving.crt" --tls-private-key-file "$PKI/metrics-server-serving.key" \
  --kubelet-certificate-authority "$PKI/ca.crt" --kubelet-preferred-address-types InternalIP \
  --metric-resolution 15s
if [ -x "$BIN/coredns" ]; then
  render "$REPO/k8s/local-cluster/coredns.yaml" "$STATE/coredns.yaml"
  kubectl_ apply -f "$STATE/coredns.yaml" >>"$LOGS/addons.log" 2>&1
  render "$REPO/k8s/local-cluster/Corefile" "$STATE/Corefile"
  start coredns coredns -conf "$STATE/Corefile"
fi

wait_for "node $NODE_NAME Ready" 120 kubectl_ wait --for=condition=Ready "node/$NODE_NAME" --timeout=1s
wait_for "default service account" 60 kubectl_ get serviceaccount default
log "cluster up in $((SECONDS - t0))s: export KUBECONFIG=$KUBECONFIG_ADMIN (kubectl: $STATE/bin/kubectl)"
