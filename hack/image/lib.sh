# shellcheck shell=bash
# Shared by build.sh and archive.sh (sourced, not run): the image naming rule and the
# podman configuration fix for these machines.

IMAGE_REPO=${IMAGE_REPO:-localhost/skserve}

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
