#!/usr/bin/env bash
# `make deploy`: put MODEL's image on the cluster's nodes and helm install the chart with it
# in the blue slot, then run the chart's own test. For clusters with a Docker-based node
# runtime (kind) or minikube; on this project's offline machines use `make e2e` instead.
#
#   hack/deploy.sh [MODEL] (default demand:latest; env NAMESPACE=skserve RELEASE=demand
#                           KIND_CLUSTER=skserve)
set -euo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
# shellcheck source=image/lib.sh
source "$repo/hack/image/lib.sh"
PYTHON=${PYTHON:-$repo/.venv/bin/python}
HELM=${HELM:-$(command -v helm || echo "$repo/.tools/bin/helm")}
NAMESPACE=${NAMESPACE:-skserve}
RELEASE=${RELEASE:-demand}
KIND_CLUSTER=${KIND_CLUSTER:-skserve}

model_line=$(resolve_model "${1:-demand:latest}")
model_tag=${model_line%% *}
tag=$(image_tag "$model_tag")
archive=$("$repo/hack/image/archive.sh" "$model_tag" --docker | tail -n 1)

if command -v kind >/dev/null && [[ $'\n'"$(kind get clusters 2>/dev/null)"$'\n' == *$'\n'"$KIND_CLUSTER"$'\n'* ]]; then
  kind load image-archive "$archive" --name "$KIND_CLUSTER"
elif command -v minikube >/dev/null && minikube status >/dev/null 2>&1; then
  minikube image load "$archive"
else
  echo "deploy: no kind cluster '$KIND_CLUSTER' and no running minikube; load $archive" \
       "into your nodes yourself, then rerun with SKIP_LOAD=1" >&2
  [[ ${SKIP_LOAD:-0} == 1 ]] || exit 1
fi

"$HELM" upgrade --install "$RELEASE" "$repo/helm/skserve" --namespace "$NAMESPACE" \
  --create-namespace --wait --timeout 5m \
  --set "slots.blue.model=$model_tag" --set "slots.blue.modelVersion=$tag"
"$HELM" test "$RELEASE" --namespace "$NAMESPACE" --logs
