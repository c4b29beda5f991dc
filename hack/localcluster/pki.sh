#!/usr/bin/env bash
# Creates the cluster's CA, serving and client certificates and kubeconfigs,
# once: an existing PKI is kept so restarts keep every credential valid.
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/pki-lib.sh"

PKI="$STATE_DIR/pki"
NODE_IP="$1"
mkdir -p "$PKI"
cd "$PKI"

if [[ ! -f ca.crt ]]; then
  openssl req -x509 -newkey rsa:2048 -nodes -keyout ca.key -out ca.crt -days 3650 \
    -subj "/CN=coalmine-local-ca" 2>/dev/null
fi
[[ -f sa.key ]] || { openssl genrsa -out sa.key 2048 2>/dev/null; openssl rsa -in sa.key -pubout -out sa.pub 2>/dev/null; }

cert etcd etcd "" "IP:127.0.0.1,DNS:localhost"
cert apiserver kube-apiserver "" \
  "DNS:kubernetes,DNS:kubernetes.default,DNS:kubernetes.default.svc,DNS:kubernetes.default.svc.$CLUSTER_DOMAIN,DNS:localhost,IP:127.0.0.1,IP:$KUBERNETES_SVC_IP,IP:$NODE_IP"
cert apiserver-etcd-client kube-apiserver-etcd-client
cert apiserver-kubelet-client kube-apiserver-kubelet-client system:masters
cert admin coalmine-admin system:masters
cert controller-manager system:kube-controller-manager
cert scheduler system:kube-scheduler
cert kube-proxy system:kube-proxy
# The API server's client certificate when it proxies to an aggregated API (metrics-server).
cert front-proxy-client front-proxy-client
cert kubelet "system:node:$NODE_NAME" system:nodes "DNS:$NODE_NAME,DNS:localhost,IP:127.0.0.1,IP:$NODE_IP"

for k in admin controller-manager scheduler kube-proxy kubelet; do kubeconfig "$k" "$STATE_DIR/$k.kubeconfig"; done
