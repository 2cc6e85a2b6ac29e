#!/usr/bin/env bash
# Build the HAProxy image of the chart's haproxy router offline with podman, and optionally
# write it as an archive for `ctr images import` / `kind load image-archive`.
#
#   hack/image/build-haproxy.sh [--archive]
#
# The image is localhost/skserve-haproxy:2.6 (the chart's rollout.haproxy.image default):
# Debian's haproxy package on localhost/skserve-base:bookworm, the debootstrap base the
# serving image uses (built here when missing, as hack/image/build.sh does). apt on the host
# downloads exactly the packages the base lacks (it resolves against the base's dpkg status)
# into .cache/debs/haproxy; `podman build --network=none` installs them with dpkg.
# Cached: an image that exists is kept (REBUILD=1 rebuilds it); the archive is written again
# only when the image changed. Prints the image reference, and the archive path with
# --archive. Environment: BASE_IMAGE, HAPROXY_IMAGE, DEBIAN_MIRROR, REBUILD=1.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$here/../.." && pwd)
# shellcheck source=lib.sh
source "$here/lib.sh"

archive=0
for arg in "$@"; do
  case $arg in
    --archive) archive=1 ;;
    *) echo "usage: $0 [--archive]" >&2; exit 2 ;;
  esac
done
base_image=${BASE_IMAGE:-localhost/skserve-base:bookworm}
image=${HAPROXY_IMAGE:-localhost/skserve-haproxy:2.6}
mirror=${DEBIAN_MIRROR:-http://deb.debian.org/debian}
debs=$repo/.cache/debs/haproxy
out=$repo/build/skserve-haproxy.oci.tar
t0=$SECONDS

install_host_packages
ensure_containers_conf
if [[ ${REBUILD:-0} == 1 ]] || ! podman image exists "$image"; then
  podman image exists "$base_image" || build_base_image
  context=$(mktemp -d /tmp/skserve-haproxy.XXXXXX)
  # shellcheck disable=SC2064
  trap "rm -rf '$context'" EXIT
  # What the base lacks, resolved by apt against the base's own package list.
  podman run --rm --network=none "$base_image" cat /var/lib/dpkg/status >"$context/status"
  mkdir -p "$debs/partial" "$context/debs"
  apt-get update -qq >&2 || true  # stale lists only matter if a package moved
  apt-get install -y -qq --download-only --no-install-recommends \
    -o Dir::State::status="$context/status" -o Dir::Cache::archives="$debs" \
    -o Debug::NoLocking=1 haproxy >&2
  # the file names of exactly that set (the cache may hold older versions too)
  mkdir -p "$context/none/partial"
  apt-get install -y -qq --print-uris --no-install-recommends \
    -o Dir::State::status="$context/status" -o Dir::Cache::archives="$context/none" \
    -o Debug::NoLocking=1 haproxy | awk '/^\x27/ {print $2}' >"$context/wanted"
  while read -r deb; do
    ln "$debs/$deb" "$context/debs/$deb" 2>/dev/null || cp "$debs/$deb" "$context/debs/"
  done <"$context/wanted"
  version=$(dpkg-deb -f "$context"/debs/haproxy_*.deb Version)
  log "podman build --network=none $image (haproxy $version, $(wc -l <"$context/wanted") packages)"
  podman build --network=none --layers --pull=never \
    --file "$here/Containerfile.haproxy" \
    --build-arg "BASE_IMAGE=$base_image" \
    --build-arg "HAPROXY_VERSION=$version" \
    --build-arg "REVISION=$(git -C "$repo" rev-parse --short HEAD 2>/dev/null || echo unknown)" \
    --build-arg "CREATED=$(date -u +%Y-%m-%dT%H:%M:%SZ)" \
    --tag "$image" "$context" >&2
  rm -rf "$context"
  trap - EXIT
  log "built $image in $((SECONDS - t0)) s"
else
  log "$image is built (REBUILD=1 to build it again)"
fi
echo "$image"
if ((archive)); then
  id=$(podman image inspect --format '{{.Id}}' "$image")
  if [[ ! -f $out || $(cat "$out.id" 2>/dev/null) != "$id" ]]; then
    mkdir -p "$(dirname "$out")"
    rm -f "$out"
    podman save --quiet --format oci-archive -o "$out" "$image"
    echo "$id" >"$out.id"
    log "wrote $out ($(du -m "$out" | cut -f1) MB)"
  fi
  echo "$out"
fi
