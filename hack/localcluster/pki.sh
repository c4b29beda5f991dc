#!/usr/bin/env bash
# Creates the cluster's CA, serving and client certificates and kubeconfigs,
# once: an existing PKI is kept so restarts keep every credential valid.
source "$(dirname "$0")/lib.sh"

PKI="$STATE_DIR/pki"
NODE_IP="$1"
mkdir -p "$PKI"
cd "$PKI"

if [[ ! -f ca.crt ]]; then
  openssl req -x509 -newkey rsa:2048 -nodes -keyout ca.key -out ca.crt -days 3650 \
    -subj "/CN=coalmine-local-ca" 2>/dev/null
fi
[[ -f sa.key ]] || { openssl genrsa -out sa.key 2048 2>/dev/null; openssl rsa -in sa.key -pubout -out sa.pub 2>/dev/null; }

# cert NAME CN [O] [SANS]
cert() {
  local name="$1" cn="$2" org="${3:-}" sans="${4:-}"
  [[ -f "$name.crt" ]] && return
  local subj="/CN=$cn"; [[ -n "$org" ]] && subj="/O=$org$subj"
  local ext; ext="$(mktemp)"
  {
    echo "basicConstraints=CA:FALSE"
    echo "keyUsage=critical,digitalSignature,keyEncipherment"
    echo "extendedKeyUsage=serverAuth,clientAuth"
    [[ -n "$sans" ]] && echo "subjectAltName=$sans"
  } >"$ext"
  openssl req -newkey rsa:2048 -nodes -keyout "$name.key" -out "$name.csr" -subj "$subj" 2>/dev/null
  openssl x509 -req -in "$name.csr" -CA ca.crt -CAkey ca.key -CAcreateserial -out "$name.crt" \
    -days 3650 -extfile "$ext" 2>/dev/null
  rm -f "$name.csr" "$ext"
}

cert etcd etcd "" "IP:127.0.0.1,DNS:localhost"
cert apiserver kube-apiserver "" \
  "DNS:kubernetes,DNS:kubernetes.default,DNS:kubernetes.default.svc,DNS:kubernetes.default.svc.$CLUSTER_DOMAIN,DNS:localhost,IP:127.0.0.1,IP:$KUBERNETES_SVC_IP,IP:$NODE_IP"
cert apiserver-etcd-client kube-apiserver-etcd-client
cert apiserver-kubelet-client kube-apiserver-kubelet-client system:masters
cert admin coalmine-admin system:masters
cert controller-manager system:kube-controller-manager
cert scheduler system:kube-scheduler
cert kube-proxy system:kube-proxy
cert kubelet "system:node:$NODE_NAME" system:nodes "DNS:$NODE_NAME,DNS:localhost,IP:127.0.0.1,IP:$NODE_IP"

kubeconfig() {
  local name="$1" out="$STATE_DIR/$1.kubeconfig"
  cat >"$out" <<KCFG
apiVersion: v1
kind: Config
clusters:
- name: coalmine-local
  cluster:
    certificate-authority-data: $(base64 -w0 ca.crt)
    server: https://127.0.0.1:$APISERVER_PORT
users:
- name: $name
  user:
    client-certificate-data: $(base64 -w0 "$name.crt")
    client-key-data: $(base64 -w0 "$name.key")
contexts:
- name: coalmine-local
  context: {cluster: coalmine-local, user: $name}
current-context: coalmine-local
KCFG
  chmod 600 "$out"
}
for k in admin controller-manager scheduler kube-proxy kubelet; do kubeconfig "$k"; done
