# shellcheck shell=bash
# Shared by build.sh and archive.sh (sourced, not run): the image naming rule and the
# podman configuration fix for these machines.

IMAGE_REPO=${IMAGE_REPO:-localhost/skserve}

log() { printf '[image] %s\n' "$*" >&2; }

# The image tag for a model tag: `name:version` → `name-version`, any character a tag may not
# hold ([A-Za-z0-9_.-] only) replaced by `-`, at most 128 characters.
# e.g. demand:v3 → demand-v3; demand:20260123_abc → demand-20260123_abc.
image_tag() {
  local t=${1/:/-}
  t=${t//[^A-Za-z0-9_.-]/-}
  printf '%s' "${t:0:128}"
}

image_ref() { printf '%s:%s' "$IMAGE_REPO" "$(image_tag "$1")"; }

# podman 4.3 on these machines fails with "setrlimit RLIMIT_NOFILE: Operation not permitted"
# and, with crun, "cgroups in hybrid mode not supported". Add only the missing keys to the
# machine-wide /etc/containers/containers.conf; never rewrite what is there.
ensure_containers_conf() {
  local conf=${CONTAINERS_CONF_FILE:-/etc/containers/containers.conf}
  mkdir -p "$(dirname "$conf")"
  touch "$conf"
  _conf_key "$conf" containers default_ulimits '["nofile=1024:1024", "nproc=1000:1000"]'
  _conf_key "$conf" engine runtime '"runc"'
}

_conf_key() {  # FILE TABLE KEY VALUE: set KEY in [TABLE] unless the table already has it
  local conf=$1 table=$2 key=$3 value=$4
  if awk -v t="[$table]" -v k="$key" '
       /^[[:space:]]*\[/ { gsub(/[[:space:]]/, ""); in_t = ($0 == t); next }
       in_t && $0 ~ "^[[:space:]]*" k "[[:space:]]*=" { found = 1 }
       END { exit !found }' "$conf"; then
    return 0
  fi
  echo "[image] adding $key to [$table] in $conf" >&2
  if grep -qE "^[[:space:]]*\[$table\][[:space:]]*$" "$conf"; then
    sed -i -E "0,/^[[:space:]]*\[$table\][[:space:]]*$/s//&\n$key = ${value//\//\\/}/" "$conf"
  else
    printf '\n[%s]\n%s = %s\n' "$table" "$key" "$value" >>"$conf"
  fi
}

# The concrete name:version for a model reference (name, name:latest or name:version), looked
# up in the local model store (honours BENTOML_HOME and SKSERVE_MODEL_STORE). Prints
# "name:version path-of-the-model-folder".
resolve_model() {
  "${PYTHON:?}" - "$1" <<'PY'
import sys

import bentoml

from skserve import store

try:
    info = store.get_info(sys.argv[1])
except LookupError as exc:
    sys.exit(f"[image] {exc}\n  train it first (skserve train --version V) or pick another MODEL")
print(info.tag, bentoml.models.get(info.tag).path)
PY
}

# Host packages the offline builds need (podman and friends, debootstrap).
install_host_packages() {
  local need=() pair
  for pair in podman:podman buildah:buildah runc:runc crun:crun slirp4netns:slirp4netns \
              fuse-overlayfs:fuse-overlayfs newuidmap:uidmap debootstrap:debootstrap \
              strip:binutils; do
    command -v "${pair%%:*}" >/dev/null 2>&1 || need+=("${pair#*:}")
  done
  ((${#need[@]})) || return 0
  log "installing ${need[*]}"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >&2
}

# debootstrap minbase + python3, trimmed of what only apt and humans read, imported as an image
# ($base_image; $mirror; $t0 for the timing). The serving and HAProxy images share it.
build_base_image() {
  log "building $base_image with debootstrap (about 2 minutes)"
  local rootfs
  rootfs=$(mktemp -d /var/tmp/skserve-rootfs.XXXXXX)
  # shellcheck disable=SC2064
  trap "rm -rf '$rootfs'" EXIT
  debootstrap --variant=minbase --include=python3,python3-venv,ca-certificates \
    bookworm "$rootfs" "$mirror" >&2
  rm -rf "$rootfs"/var/cache/apt/* "$rootfs"/var/lib/apt/lists/* "$rootfs"/var/log/* \
         "$rootfs"/usr/share/doc/* "$rootfs"/usr/share/man/* "$rootfs"/usr/share/info/* \
         "$rootfs"/usr/share/locale/* "$rootfs"/var/cache/debconf/*-old
  tar --numeric-owner -C "$rootfs" -c . |
    podman import --change 'CMD ["/bin/bash"]' \
      --change 'LABEL org.opencontainers.image.title=skserve-base' \
      - "$base_image" >&2
  rm -rf "$rootfs"
  trap - EXIT
  log "base image ready ($((SECONDS - t0)) s)"
}
