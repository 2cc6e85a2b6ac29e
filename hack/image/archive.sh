#!/usr/bin/env bash
# Write the serving image for MODEL as an archive that `kind load image-archive` and
# `ctr -n k8s.io images import` accept.
#
#   hack/image/archive.sh [MODEL | --tag TAG] [--docker]   (--tag: an image built with build.sh --tag)
#   hack/image/archive.sh --loadtest [--docker]   (the load-test image, build.sh --loadtest)
#   hack/image/archive.sh --controller [--docker] (the rollout controller's, build.sh --controller)
#
# Always writes build/skserve-<tag>.oci.tar (podman save --format oci-archive, layers
# gzipped); with --docker (or ARCHIVE_DOCKER=1) also build/skserve-<tag>.docker.tar
# (docker-archive, uncompressed, the format older kind releases expect). MODEL is resolved
# like build.sh does (name or name:latest → the store's latest version). Prints the paths.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$here/../.." && pwd)
# shellcheck source=lib.sh
source "$here/lib.sh"

model=demand:latest
docker=${ARCHIVE_DOCKER:-0}
job=""
tag=""
while (($#)); do
  case $1 in
    --docker) docker=1 ;;
    --loadtest) job=loadtest ;;
    --controller) job=controller ;;
    --tag) tag=${2:?--tag needs a value}; shift ;;
    -*) echo "usage: $0 [MODEL | --tag TAG | --loadtest | --controller] [--docker]" >&2
        exit 2 ;;
    *) model=$1 ;;
  esac
  shift
done
PYTHON=${PYTHON:-$repo/.venv/bin/python}

if [[ -n $job ]]; then
  version=$("$PYTHON" -c 'import sys, tomllib
print(tomllib.load(open(sys.argv[1], "rb"))["project"]["version"])' "$repo/pyproject.toml")
  image=$IMAGE_REPO-$job:$version
  name=skserve-$job-$version
  build_args=--$job
else
  if [[ -n $tag ]]; then
    model_tag=$tag  # the image built with build.sh --tag TAG
  elif [[ $model == *:* && $model != *:latest ]]; then
    model_tag=$model
  else
    model_line=$(resolve_model "$model") || exit 1
    model_tag=${model_line%% *}
  fi
  image=$(image_ref "$model_tag")
  name=skserve-$(image_tag "$model_tag")
  build_args=$model_tag
fi
podman image exists "$image" || {
  echo "[image] $image is not built: run hack/image/build.sh $build_args first" >&2
  exit 1
}

out=$repo/build
mkdir -p "$out"
base=$out/$name
t0=$SECONDS
rm -f "$base.oci.tar"
podman save --quiet --format oci-archive -o "$base.oci.tar" "$image"
echo "[image] wrote $base.oci.tar ($(du -m "$base.oci.tar" | cut -f1) MB, $((SECONDS - t0)) s)" >&2
echo "$base.oci.tar"
if [[ $docker == 1 ]]; then
  rm -f "$base.docker.tar"
  podman save --quiet --format docker-archive -o "$base.docker.tar" "$image"
  echo "[image] wrote $base.docker.tar ($(du -m "$base.docker.tar" | cut -f1) MB)" >&2
  echo "$base.docker.tar"
fi
