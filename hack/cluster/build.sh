#!/usr/bin/env bash
# Build (once) the cluster's binaries from the Go module proxy through the pinned tools
# modules in hack/tools: kube-apiserver, kube-controller-manager, kube-scheduler, kubelet,
# kube-proxy, containerd (+ ctr, shim), metrics-server and CoreDNS. Output is cached in
# $CACHE/k8s-bin-<version>; a group is rebuilt only when one of its binaries is missing.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

GO="$(command -v go || echo /usr/local/go/bin/go)"
[ -x "$GO" ] || die "Go toolchain not found (need go >= 1.26 on PATH or at /usr/local/go/bin/go)"
# go.sum files are complete (go mod tidy), so the default -mod=readonly build needs no network
# beyond downloading the pinned modules once into the module cache
export CGO_ENABLED=0 GOFLAGS="-trimpath -buildvcs=false"
mkdir -p "$BIN"

have_all() { local b; for b in "$@"; do [ -x "$BIN/$b" ] || return 1; done; }

# build_group DIR LDFLAGS TAGS PKG...: one `go build` per group so packages compile once.
build_group() {
  local dir="$1" ldflags="$2" tags="$3"; shift 3
  local t0=$SECONDS
  log "building $* (in hack/tools/$dir)"
  (cd "$REPO/hack/tools/$dir" && nice -n 10 "$GO" build -tags "$tags" -ldflags "$ldflags" -o "$BIN/" "$@")
  log "built $(printf '%s ' "${@##*/}")in $((SECONDS - t0))s"
}

minor="${K8S_VERSION#v1.}"; minor="${minor%%.*}"
v="k8s.io/component-base/version"
cv="k8s.io/client-go/pkg/version"
k8s_ldflags="-s -w -X $v.gitVersion=$K8S_VERSION -X $v.gitMajor=1 -X $v.gitMinor=$minor \
 -X $v.gitTreeState=clean -X $v.buildDate=1970-01-01T00:00:00Z \
 -X $cv.gitVersion=$K8S_VERSION -X $cv.gitMajor=1 -X $cv.gitMinor=$minor"

if ! have_all kube-apiserver kube-controller-manager kube-scheduler kubelet kube-proxy; then
  build_group . "$k8s_ldflags" "" \
    k8s.io/kubernetes/cmd/kube-apiserver k8s.io/kubernetes/cmd/kube-controller-manager \
    k8s.io/kubernetes/cmd/kube-scheduler k8s.io/kubernetes/cmd/kubelet \
    k8s.io/kubernetes/cmd/kube-proxy
fi

if ! have_all containerd ctr containerd-shim-runc-v2; then
  build_group containerd \
    "-s -w -X github.com/containerd/containerd/version.Version=$CONTAINERD_VERSION" \
    "no_btrfs no_devmapper no_zfs no_aufs" \
    github.com/containerd/containerd/cmd/containerd github.com/containerd/containerd/cmd/ctr \
    github.com/containerd/containerd/cmd/containerd-shim-runc-v2
fi

if ! have_all metrics-server; then
  build_group metrics-server "-s -w -X sigs.k8s.io/metrics-server/pkg/version.gitVersion=$METRICS_SERVER_VERSION" "" \
    sigs.k8s.io/metrics-server/cmd/metrics-server
fi

if [ -d "$REPO/hack/tools/coredns" ] && ! have_all coredns; then
  build_group coredns "-s -w" "" github.com/coredns/coredns
fi

log "binaries ready in $BIN"
