#!/usr/bin/env bash
# `make cluster-down`: stop every process hack/cluster/up.sh started (by pid file), kill the
# pods' containers, unmount what the cluster mounted, remove the iptables chains, cgroups and
# bridge it made, and delete the state dir (.cluster/). Cached binaries are kept.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

# stop NAME...: TERM each process group from its pid file, wait up to 15s, then KILL.
stop() {
  local name pid i alive pids=()
  for name in "$@"; do
    [ -f "$PIDS/$name.pid" ] || continue
    pid="$(cat "$PIDS/$name.pid")"
    if kill -0 "$pid" 2>/dev/null; then
      kill -TERM -- "-$pid" 2>/dev/null || kill -TERM "$pid" 2>/dev/null || true
      pids+=("$pid")
      log "stopping $name (pid $pid)"
    fi
    rm -f "$PIDS/$name.pid"
  done
  for ((i = 0; i < 150; i++)); do
    alive=0
    for pid in "${pids[@]}"; do kill -0 "$pid" 2>/dev/null && alive=1; done
    [ "$alive" = 0 ] && return 0
    sleep 0.1
  done
  for pid in "${pids[@]}"; do kill -KILL -- "-$pid" 2>/dev/null || kill -KILL "$pid" 2>/dev/null || true; done
}

[ -d "$STATE" ] || { log "nothing to do: $STATE does not exist"; exit 0; }

stop coredns metrics-server kube-proxy kubelet

# containers: kill every task through containerd while it still runs (the shims then exit and
# unmount the rootfs), then make sure no shim or container of ours is left
ids=""
if [ -S "$CONTAINERD_SOCK" ] && [ -x "$BIN/ctr" ]; then
  ids="$(ctr_ containers ls -q 2>/dev/null || true)"
  for id in $(ctr_ tasks ls -q 2>/dev/null || true); do ctr_ tasks kill -s SIGKILL "$id" >/dev/null 2>&1 || true; done
  sleep 1
  for id in $(ctr_ tasks ls -q 2>/dev/null || true); do ctr_ tasks delete -f "$id" >/dev/null 2>&1 || true; done
fi
stop containerd
for pid in $(pgrep -f "containerd-shim-runc-v2 .*-address $CONTAINERD_SOCK" || true); do
  kill -KILL "$pid" 2>/dev/null || true
done
for root in "$STATE"/run/runc/*/; do # runc state of our containers, one dir per namespace
  [ -d "$root" ] || continue
  for id in $(runc --root "$root" list -q 2>/dev/null || true); do
    runc --root "$root" delete --force "$id" >/dev/null 2>&1 || true
  done
done

stop api-forward kube-scheduler kube-controller-manager
stop kube-apiserver
stop etcd

# mounts under the state dir (container rootfs, pod volumes, netns), deepest first
for _ in 1 2 3; do
  mounts="$(awk -v p="$STATE/" 'index($2, p) == 1 {print $2}' /proc/self/mounts | sort -r)"
  [ -n "$mounts" ] || break
  for m in $mounts; do umount "$m" 2>/dev/null || umount -l "$m" 2>/dev/null || true; done
done

# pod cgroups made by the kubelet (cgroupfs driver, cgroups v1: one tree per controller)
for d in /sys/fs/cgroup/*/kubepods /sys/fs/cgroup/unified/kubepods; do
  if [ -d "$d" ]; then find "$d" -depth -type d -exec rmdir {} + 2>/dev/null || true; fi
done

# purge IPT TABLE CHAIN...: delete the rules that jump into the chains, flush them, delete them
purge() {
  local ipt="$1" table="$2" rules c; shift 2
  rules="$("$ipt-save" -t "$table" 2>/dev/null || true)"
  for c in "$@"; do
    { grep -E -- "^-A [^ ]+ .*-j $c( |\$)" <<<"$rules" || true; } | sed 's/^-A /-D /' |
      while read -r r; do eval "$ipt -t $table $r" 2>/dev/null || true; done
  done
  for c in "$@"; do "$ipt" -t "$table" -F "$c" 2>/dev/null || true; done
  for c in "$@"; do "$ipt" -t "$table" -X "$c" 2>/dev/null || true; done
}

# iptables: all KUBE-* chains (kube-proxy, kubelet) and the CNI portmap chains of our network
# (rules commented `name: "skserve"`); the shared CNI-HOSTPORT-* chains only when no other CNI
# user has a port mapping in them
for ipt in iptables ip6tables; do
  command -v "$ipt-save" >/dev/null || continue
  for table in nat filter mangle; do
    rules="$("$ipt-save" -t "$table" 2>/dev/null || true)"
    kube="$(grep -oE '^:KUBE-[^ ]+' <<<"$rules" | tr -d : || true)"
    ours="$(grep -F "name: \\\"skserve\\\"" <<<"$rules" | grep -oE -- '-j CNI-[^ ]+' | cut -c4- || true)"
    # shellcheck disable=SC2086 # word splitting wanted: lists of chain names
    purge "$ipt" "$table" $kube $ours
    rules="$("$ipt-save" -t "$table" 2>/dev/null || true)"
    if grep -q '^:CNI-HOSTPORT-DNAT' <<<"$rules" && ! grep -q '^-A CNI-HOSTPORT-DNAT' <<<"$rules"; then
      purge "$ipt" "$table" CNI-HOSTPORT-DNAT CNI-HOSTPORT-MASQ CNI-HOSTPORT-SETMARK
    fi
  done
done

# the bridge up.sh made; the pods' veths are gone with their network namespaces
if ip link show "$BRIDGE" >/dev/null 2>&1; then
  ip link del "$BRIDGE" && log "removed bridge $BRIDGE"
fi

# CNI result cache of our network (libcni writes it to /var/lib/cni), and the dirs containerd
# made under /run/containerd, if nothing else uses them (rmdir only removes empty dirs)
for f in /var/lib/cni/results/skserve-*; do # our network's results name the container id
  [ -e "$f" ] || continue
  id="${f#/var/lib/cni/results/skserve-}"
  ids="$ids ${id%-*}"
done
for id in $ids; do rm -f /var/lib/cni/results/*-"$id"-* 2>/dev/null || true; done
rmdir /var/lib/cni/results /var/lib/cni /run/containerd/s /run/containerd/runc/k8s.io \
  /run/containerd/runc /run/containerd 2>/dev/null || true

# host sysctls as they were before cluster-up
if [ -f "$STATE/run/sysctl.orig" ]; then
  while read -r kv; do sysctl -qw "$kv" 2>/dev/null || true; done <"$STATE/run/sysctl.orig"
fi

rm -rf "$STATE"
log "cluster down; state removed ($STATE); binaries kept in $BIN"
