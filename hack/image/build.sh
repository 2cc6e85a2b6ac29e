#!/usr/bin/env bash
# Build the skserve serving image offline with podman, one model version baked in (or several).
#
#   hack/image/build.sh [--context-only] [--tag TAG] [--extras LIST] [MODEL...]
#   hack/image/build.sh --loadtest | --controller
#
# MODEL is name:version, or name / name:latest resolved against the local model store
# (BENTOML_HOME, SKSERVE_MODEL_STORE); default demand:latest. The image is
# localhost/skserve:<name>-<version> of the first MODEL (rule in lib.sh), or
# localhost/skserve:TAG. With several MODELs every one is in the image's store and the first
# is served by default; SKSERVE_MODEL (the chart's slots.<name>.model) picks another, so one
# image serves every version of a rollout test. --extras (default serve) names the skserve
# extras installed. --context-only writes the build context build/image-context/<tag> for
# hack/image/Dockerfile and stops (no podman, no wheel download).
# A job's own image instead, the same way, with no model and skserve[<its extra>] only, named
# localhost/skserve-<job>:<skserve version> (what the chart runs by default):
#   --loadtest    the load-test pods (`skserve loadtest`: the loadtest extra);
#   --controller  the in-cluster rollout controller (`skserve rollout controller`: the kube
#                 extra, the Kubernetes client and httpx; no BentoML, no scikit-learn).
#
# Steps: host packages (podman, buildah, debootstrap, ...) → containers.conf fix → base image
# localhost/skserve-base:bookworm from debootstrap (built once, kept in podman's storage) →
# wheels from PyPI with `pip download`, pinned to the venv's versions (cached in .cache/wheels)
# of `skserve[serve]` only (what serving and batch scoring need), their shared libraries
# stripped (strip_wheels.py) → the project's wheel → the model copied out of the store →
# `podman build --network=none`.
# Prints the image reference (or the context path) on stdout; progress goes to stderr.
# Environment: PYTHON (default .venv/bin/python), IMAGE_REPO (default localhost/skserve),
# BASE_IMAGE (default localhost/skserve-base:bookworm), DEBIAN_MIRROR, REBUILD_BASE=1.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$here/../.." && pwd)
# shellcheck source=lib.sh
source "$here/lib.sh"

models=()
context_only=0
job=""           # loadtest | controller: a job's image, no model
tag=""
extras=serve      # the image carries what `skserve serve` and `skserve batch run` need
while (($#)); do
  case $1 in
    --context-only) context_only=1 ;;
    --loadtest) job=loadtest ;;
    --controller) job=controller ;;
    --tag) tag=${2:?--tag needs a value}; shift ;;
    --extras) extras=${2:?--extras needs a value}; shift ;;
    -*) echo "usage: $0 [--context-only] [--tag TAG] [--extras LIST] [MODEL...] |" \
          "$0 --loadtest | --controller" >&2; exit 2 ;;
    *) models+=("$1") ;;
  esac
  shift
done
((${#models[@]})) || models=("${MODEL:-demand:latest}")
PYTHON=${PYTHON:-$repo/.venv/bin/python}
base_image=${BASE_IMAGE:-localhost/skserve-base:bookworm}
mirror=${DEBIAN_MIRROR:-http://deb.debian.org/debian}
wheels=$repo/.cache/wheels/cp311-manylinux-x86_64
case $job in
  loadtest) extras=loadtest; what="load test (skserve loadtest, Locust)" ;;
  controller) extras=kube; what="rollout controller (skserve rollout controller)" ;;
esac
UV_FALLBACK=0.13.9  # uv for the build when the venv has none
unset PIP_FIND_LINKS  # only our own wheel cache, whatever this machine's pip defaults say
t0=$SECONDS
# Every wheel `skserve[$EXTRAS]` needs for CPython 3.11 on glibc x86_64, pinned by
# constraints.txt; offline when the cache already has them all. Then the exact set, its
# shared libraries stripped (strip_wheels.py), and uv, the installer used inside the build.
fetch_wheels() {
  local platforms=(--platform manylinux2014_x86_64) v target
  for v in 17 24 27 28 31 34 35 36; do platforms+=(--platform "manylinux_2_${v}_x86_64"); done
  platforms+=(--platform any)
  target="skserve[$extras] @ file://$wheel"
  download() {
    "$PYTHON" -m pip download --quiet --disable-pip-version-check --only-binary=:all: \
      --python-version 3.11 --implementation cp --abi cp311 "${platforms[@]}" \
      --constraint "$context/constraints.txt" --dest "$wheels" "$@" >&2
  }
  mkdir -p "$wheels"
  # pip download saves the project's own wheel beside its dependencies; a stale copy of the
  # same version would answer this check with its old dependency list
  rm -f "$wheels"/skserve-*.whl
  if download --no-index --find-links "$wheels" "$target" "$uv_pin" 2>/dev/null; then
    log "wheels: all in the cache ($wheels)"
  else
    log "wheels: fetching from PyPI into $wheels"
    download "$target" "$uv_pin"
  fi
  rm -f "$wheels"/skserve-*.whl
  # The exact set the image installs, resolved from the cache alone: name==version lines.
  "$PYTHON" -m pip install --quiet --disable-pip-version-check --dry-run --ignore-installed \
    --no-index --find-links "$wheels" --constraint "$context/constraints.txt" \
    --report "$context/report.json" "$target" >&2
  "$PYTHON" - "$context/report.json" >"$context/requirements.lock" <<'PY'
import json
import sys

report = json.load(open(sys.argv[1]))
print("\n".join(sorted(f"{i['metadata']['name']}=={i['metadata']['version']}"
                       for i in report["install"] if i["metadata"]["name"] != "skserve")))
PY
  log "$(wc -l <"$context/requirements.lock") pinned dependencies (skserve[$extras])"
  # Hard links keep the context cheap; the bind mount keeps the wheels out of the image.
  "$PYTHON" "$here/strip_wheels.py" "$context/report.json" "$wheels-stripped" \
    "$context/wheels"
  rm -f "$context/report.json"
  # The installer used inside the build: uv's binary from its wheel (never installed).
  mkdir -p "$context/tools"
  "$PYTHON" - "$uv_pin" "$wheels" "$context/tools/uv" <<'PY'
import os
import pathlib
import sys
import zipfile

version = sys.argv[1].split("==")[1]
wheel = next(pathlib.Path(sys.argv[2]).glob(f"uv-{version}-*.whl"))
with zipfile.ZipFile(wheel) as z:
    member = next(n for n in z.namelist() if n.endswith(".data/scripts/uv"))
    pathlib.Path(sys.argv[3]).write_bytes(z.read(member))
os.chmod(sys.argv[3], 0o755)
PY
}

# The wheel's RECORD lists a sha256 per file: the same code gives the same hash, whatever the
# zip timestamps, so the project layer stays cached until the code changes.
wheel_content_sha256() {
  "$PYTHON" -c 'import sys, zipfile; z = zipfile.ZipFile(sys.argv[1]); sys.stdout.buffer.write(
    z.read(next(n for n in z.namelist() if n.endswith(".dist-info/RECORD"))))' "$1" |
    sha256sum | cut -d' ' -f1
}

((context_only)) || { install_host_packages; ensure_containers_conf; }

# --- the model: name[:latest] → a concrete version and its folder ---------------------------
if [[ -n $job ]]; then
  model_tag=""
  skserve_version=$("$PYTHON" -c 'import sys, tomllib
print(tomllib.load(open(sys.argv[1], "rb"))["project"]["version"])' "$repo/pyproject.toml")
  image=$IMAGE_REPO-$job:$skserve_version
  context=$repo/build/image-context/$job-$skserve_version
  description="skserve $skserve_version $what"
  log "$job image $image (skserve[$extras])"
  model_tags=()
else
  model_tags=()
  model_dirs=()
  for model in "${models[@]}"; do
    model_line=$(resolve_model "$model") || exit 1
    read -r one_tag one_dir <<<"$model_line"
    model_tags+=("$one_tag")
    model_dirs+=("$one_dir")
  done
  model_tag=${model_tags[0]}
  tag=${tag:-$(image_tag "$model_tag")}
  image=$IMAGE_REPO:$tag
  context=$repo/build/image-context/$tag
  description="skserve: BentoML service for the scikit-learn model(s) ${model_tags[*]}"
  log "model(s) ${model_tags[*]} → image $image (skserve[$extras])"
fi

if ((!context_only)) && { [[ ${REBUILD_BASE:-0} == 1 ]] || ! podman image exists "$base_image"; }
then
  build_base_image
fi

# --- the build context -------------------------------------------------------------------------
rm -rf "$context"
mkdir -p "$context/dist" "$context/models"
log "building the skserve wheel"
# From a clean copy of the working tree: setuptools' in-tree build/lib keeps deleted modules.
src=$(mktemp -d /tmp/skserve-src.XXXXXX)
cp "$repo/pyproject.toml" "$src/"
[[ -f $repo/README.md ]] && cp "$repo/README.md" "$src/"
tar -C "$repo" --exclude='__pycache__' --exclude='*.egg-info' -c service | tar -C "$src" -x
"$PYTHON" -m pip wheel --quiet --disable-pip-version-check --no-deps \
  --wheel-dir "$context/dist" "$src" >&2
rm -rf "$src"
wheel=$(ls "$context/dist"/skserve-*.whl)

# Pin every dependency to the version in the venv, the one the model was trained and tested
# with: a scikit-learn pickle is only safe to load with the version that wrote it.
"$PYTHON" -m pip freeze --exclude-editable --disable-pip-version-check |
  grep -E '^[A-Za-z0-9._-]+==' | grep -viE '^skserve==' >"$context/constraints.txt"
# uv installs inside the build: the venv's version (the dev extra has it), else a known one.
uv_pin=$(grep -iE '^uv==' "$context/constraints.txt" || echo "uv==$UV_FALLBACK")

# The models, laid out as a BentoML store, readable by everyone, writable by none; `latest`
# of each name is the first of that name given (a job image's store is empty).
for i in "${!model_tags[@]}"; do
  name=${model_tags[$i]%%:*}
  version=${model_tags[$i]#*:}
  mkdir -p "$context/models/$name"
  cp -a "${model_dirs[$i]}" "$context/models/$name/$version"
  [[ -f $context/models/$name/latest ]] || printf '%s' "$version" >"$context/models/$name/latest"
done
chmod -R a+rX,go-w "$context/models"

if ((context_only)); then
  log "context ready; with Docker: docker build -f hack/image/Dockerfile" \
      "--build-arg MODEL_TAG=$model_tag -t $image $context"
  echo "$context"
  exit 0
fi
fetch_wheels

# --- build -----------------------------------------------------------------------------------
log "podman build --network=none $image"
previous=$(podman image inspect --format '{{.Id}}' "$image" 2>/dev/null || true)
podman build --network=none --layers --pull=never \
  --file "$here/Containerfile" \
  --build-arg "BASE_IMAGE=$base_image" \
  --build-arg "MODEL_TAG=$model_tag" \
  --build-arg "DESCRIPTION=$description" \
  --build-arg "MODELS=$(IFS=,; echo "${model_tags[*]}")" \
  --build-arg "SKSERVE_VERSION=$(basename "$wheel" | cut -d- -f2)" \
  --build-arg "WHEEL_SHA256=$(wheel_content_sha256 "$wheel")" \
  --build-arg "REVISION=$(git -C "$repo" rev-parse --short HEAD 2>/dev/null || echo unknown)" \
  --build-arg "CREATED=$(date -u +%Y-%m-%dT%H:%M:%SZ)" \
  --tag "$image" "$context" >&2
# Drop the image this tag pointed at before, if nothing else names it (ours only: no prune).
current=$(podman image inspect --format '{{.Id}}' "$image")
if [[ -n $previous && $previous != "$current" ]] &&
   [[ $(podman image inspect --format '{{len .RepoTags}}' "$previous" 2>/dev/null) == 0 ]]; then
  podman rmi "$previous" >/dev/null 2>&1 || true
fi
size=$(podman image inspect --format '{{.Size}}' "$image")
log "built $image in $((SECONDS - t0)) s ($((size / 1000000)) MB)"
echo "$image"
