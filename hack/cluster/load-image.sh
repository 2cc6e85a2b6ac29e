#!/usr/bin/env bash
# Import image archives (OCI archive from `podman save --format oci-archive`, or docker
# archive) into the local cluster's containerd, namespace k8s.io, so pods can use them with
# imagePullPolicy: Never / IfNotPresent. usage: hack/cluster/load-image.sh ARCHIVE...
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

[ "$#" -gt 0 ] || die "usage: $0 ARCHIVE..."
[ -S "$CONTAINERD_SOCK" ] || die "cluster containerd not running ($CONTAINERD_SOCK); run make cluster-up"
for archive in "$@"; do
  ctr_ images import "$archive"
done
