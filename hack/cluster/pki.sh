#!/usr/bin/env bash
# Make the cluster's self-signed PKI with openssl (CA, front-proxy CA, serving and client
# certs, service-account key pair) and a kubeconfig per client. Skips files that exist.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

mkdir -p "$PKI" "$STATE/kubeconfigs"
cd "$PKI"

ca() { # ca NAME CN
  [ -f "$1.crt" ] && return 0
  openssl req -x509 -newkey rsa:2048 -nodes -keyout "$1.key" -out "$1.crt" -days 3650 \
    -subj "/CN=$2" -addext "basicConstraints=critical,CA:TRUE" \
    -addext "keyUsage=critical,keyCertSign,cRLSign,digitalSignature" 2>/dev/null
}

cert() { # cert NAME CA SUBJECT EXTKEYUSAGE [SANS]
  local name="$1" ca="$2" subj="$3" eku="$4" sans="${5:-}"
  [ -f "$name.crt" ] && return 0
  {
    echo "basicConstraints=CA:FALSE"
    echo "keyUsage=critical,digitalSignature,keyEncipherment"
    echo "extendedKeyUsage=$eku"
    [ -n "$sans" ] && echo "subjectAltName=$sans"
  } >"$name.ext"
  openssl req -new -newkey rsa:2048 -nodes -keyout "$name.key" -out "$name.csr" -subj "$subj" 2>/dev/null
  openssl x509 -req -in "$name.csr" -CA "$ca.crt" -CAkey "$ca.key" -CAcreateserial \
    -out "$name.crt" -days 3650 -extfile "$name.ext" 2>/dev/null
  rm -f "$name.csr" "$name.ext"
}

kubeconfig() { # kubeconfig FILE CERTNAME SERVER
  cat >"$1" <<EOF
apiVersion: v1
kind: Config
clusters:
- name: skserve
  cluster:
    server: $3
    certificate-authority: $PKI/ca.crt
users:
- name: $2
  user:
    client-certificate: $PKI/$2.crt
    client-key: $PKI/$2.key
contexts:
- name: skserve
  context: {cluster: skserve, user: $2}
current-context: skserve
EOF
}

ca ca skserve-ca
ca front-proxy-ca skserve-front-proxy-ca

cert apiserver ca "/CN=kube-apiserver" serverAuth \
  "IP:127.0.0.1,IP:$NODE_IP,IP:$API_SERVICE_IP,DNS:localhost,DNS:kubernetes,DNS:kubernetes.default,DNS:kubernetes.default.svc,DNS:kubernetes.default.svc.cluster.local"
cert kubelet-serving ca "/CN=system:node:$NODE_NAME/O=system:nodes" serverAuth "IP:$NODE_IP,DNS:$NODE_NAME"
cert metrics-server-serving ca "/CN=metrics-server" serverAuth \
  "IP:$NODE_IP,DNS:metrics-server.kube-system.svc,DNS:metrics-server.kube-system.svc.cluster.local"
cert admin ca "/CN=skserve-admin/O=system:masters" clientAuth
cert apiserver-kubelet-client ca "/CN=kube-apiserver-kubelet-client/O=system:masters" clientAuth
cert controller-manager ca "/CN=system:kube-controller-manager" clientAuth
cert scheduler ca "/CN=system:kube-scheduler" clientAuth
cert kubelet ca "/CN=system:node:$NODE_NAME/O=system:nodes" clientAuth
cert kube-proxy ca "/CN=system:kube-proxy" clientAuth
cert metrics-server ca "/CN=system:metrics-server" clientAuth
cert coredns ca "/CN=system:coredns" clientAuth
cert front-proxy-client front-proxy-ca "/CN=front-proxy-client" clientAuth

if [ ! -f sa.key ]; then
  openssl genrsa -out sa.key 2048 2>/dev/null
  openssl rsa -in sa.key -pubout -out sa.pub 2>/dev/null
fi
chmod 600 ./*.key

local_api="https://127.0.0.1:$API_PORT"
kubeconfig "$KUBECONFIG_ADMIN" admin "$local_api"
for c in controller-manager scheduler kubelet kube-proxy metrics-server coredns; do
  kubeconfig "$STATE/kubeconfigs/$c.kubeconfig" "$c" "$local_api"
done
