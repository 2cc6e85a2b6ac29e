#!/usr/bin/env bash
# System packages the test suite's real servers need (Debian); idempotent, no-op when present.
# Only what is asked for: no recommended packages (prometheus recommends node-exporter, a
# daemon on :9100), and no service started by a package's maintainer scripts (Debian's
# prometheus postinst starts a server on :9090 through invoke-rc.d/deb-systemd-invoke): the
# tests start their own servers on free ports. Services are held back with policy-rc.d, the
# Debian way for chroots and images, and only while this script installs.
# Without arguments: all of them (Prometheus for the analysis, HAProxy for the rollout router).
set -euo pipefail
(($#)) || set -- prometheus haproxy
POLICY_RC_D=${POLICY_RC_D:-/usr/sbin/policy-rc.d}
need=()
for pkg in "$@"; do dpkg -s "$pkg" >/dev/null 2>&1 || need+=("$pkg"); done
((${#need[@]})) || exit 0

if [ ! -e "$POLICY_RC_D" ]; then
  trap 'rm -f "$POLICY_RC_D"' EXIT
  printf '#!/bin/sh\n# test-deps.sh: start no service while installing test packages\nexit 101\n' \
    >"$POLICY_RC_D"
  chmod 755 "$POLICY_RC_D"
fi
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${need[@]}"
