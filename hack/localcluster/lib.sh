# Shared settings of the local cluster scripts; sourced, never run.
# shellcheck shell=bash
set -euo pipefail

LC_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=versions.env
source "$LC_DIR/versions.env"

CACHE_DIR="${COALMINE_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/coalmine}"
BIN_DIR="$CACHE_DIR/kubernetes-$KUBE_VERSION/bin"
STATE_DIR="${COALMINE_CLUSTER_DIR:-/var/lib/coalmine-cluster}"
KUBECONFIG_PATH="$STATE_DIR/admin.kubeconfig"

# Address plan: pods and services live in private ranges that exist only in
# this host's network namespaces; both are blackholed as a whole (see up.sh).
POD_CIDR="10.244.0.0/16"
NODE_POD_CIDR="10.244.0.0/24"
SERVICE_CIDR="10.96.0.0/16"
KUBERNETES_SVC_IP="10.96.0.1"
DNS_SVC_IP="10.96.0.10"
CLUSTER_DOMAIN="cluster.local"
NODE_NAME="coalmine-node"
APISERVER_PORT=6443

# step (one line per step, with the time since the script started), info, die, run_logged
# shellcheck source=../lib/progress.sh
source "$LC_DIR/../lib/progress.sh"

RUN_DIR="/run/coalmine-cluster"
CONTAINERD_SOCK="$RUN_DIR/containerd.sock"
PAUSE_IMAGE="coalmine.local/pause:3.10"
COREDNS_IMAGE="coalmine.local/coredns:${COREDNS_VERSION#v}"
METRICS_SERVER_IMAGE="coalmine.local/metrics-server:${METRICS_SERVER_VERSION#v}"
BRIDGE="cni0"
NODE_IP="10.244.0.1"  # the bridge's own address: in the pod range, on this host only
RULE_TAG="coalmine-localcluster"
PKI="$STATE_DIR/pki"
COMPONENTS=(etcd kube-apiserver containerd kube-controller-manager kube-scheduler kubelet kube-proxy)

pid_of() {
  local f="$STATE_DIR/pids/$1.pid"
  [[ -f "$f" ]] || return 1
  local pid; pid="$(cat "$f")"
  kill -0 "$pid" 2>/dev/null || return 1
  echo "$pid"
}

ctr_k8s() { "$(command -v ctr)" --address "$CONTAINERD_SOCK" -n k8s.io "$@"; }
kc() { "$BIN_DIR/kubectl" --kubeconfig "$KUBECONFIG_PATH" "$@"; }

# start NAME COMMAND...: a cluster process in its own session; log and pid under STATE_DIR.
start() {
  local name="$1"; shift
  info "starting $name"
  setsid "$@" >>"$STATE_DIR/logs/$name.log" 2>&1 </dev/null &
  echo $! >"$STATE_DIR/pids/$name.pid"
}

# running PID: alive and not a zombie waiting to be reaped.
running() { [[ "$(ps -o stat= -p "$1" 2>/dev/null)" =~ ^[^Z] ]]; }

# stop NAME: SIGTERM, up to 10 s to exit, then SIGKILL; returns once it is gone.
stop() {
  local name="$1" pid
  pid="$(pid_of "$name")" || return 0
  kill "$pid" 2>/dev/null || true
  for _ in $(seq 1 40); do running "$pid" || break; sleep 0.25; done
  kill -9 "$pid" 2>/dev/null || true
  for _ in $(seq 1 40); do running "$pid" || break; sleep 0.25; done
  rm -f "$STATE_DIR/pids/$name.pid"
  info "stopped $name"
}

wait_until() {
  local what="$1" timeout="$2"; shift 2
  local deadline=$((SECONDS + timeout))
  until "$@" >/dev/null 2>&1; do
    if ((SECONDS >= deadline)); then
      die "timed out after ${timeout}s waiting for $what (logs: $STATE_DIR/logs)"
    fi
    sleep 0.5
  done
}

# The API server with the cluster's flags: up.sh starts it, apiserver.sh restarts it alone.
# The requestheader and proxy-client flags are the aggregation layer, through which the
# metrics API (metrics-server) is served; it proxies to the APIService's endpoint pod IPs
# (aggregator routing) because service IPs are not routable from this host.
start_apiserver() {
  start kube-apiserver "$BIN_DIR/kube-apiserver" \
    --advertise-address "$NODE_IP" --bind-address 0.0.0.0 --secure-port "$APISERVER_PORT" \
    --etcd-servers https://127.0.0.1:2379 --etcd-cafile "$PKI/ca.crt" \
    --etcd-certfile "$PKI/apiserver-etcd-client.crt" --etcd-keyfile "$PKI/apiserver-etcd-client.key" \
    --client-ca-file "$PKI/ca.crt" --tls-cert-file "$PKI/apiserver.crt" \
    --tls-private-key-file "$PKI/apiserver.key" \
    --kubelet-client-certificate "$PKI/apiserver-kubelet-client.crt" \
    --kubelet-client-key "$PKI/apiserver-kubelet-client.key" \
    --kubelet-certificate-authority "$PKI/ca.crt" --kubelet-preferred-address-types InternalIP \
    --service-account-issuer "https://kubernetes.default.svc.$CLUSTER_DOMAIN" \
    --service-account-key-file "$PKI/sa.pub" --service-account-signing-key-file "$PKI/sa.key" \
    --service-cluster-ip-range "$SERVICE_CIDR" --authorization-mode Node,RBAC \
    --enable-admission-plugins NodeRestriction --allow-privileged=false --profiling=false \
    --requestheader-client-ca-file "$PKI/ca.crt" --requestheader-allowed-names front-proxy-client \
    --requestheader-username-headers X-Remote-User --requestheader-group-headers X-Remote-Group \
    --requestheader-extra-headers-prefix X-Remote-Extra- \
    --proxy-client-cert-file "$PKI/front-proxy-client.crt" \
    --proxy-client-key-file "$PKI/front-proxy-client.key" --enable-aggregator-routing=true
}
