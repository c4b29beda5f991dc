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
BRIDGE="cni0"
NODE_IP="10.244.0.1"  # the bridge's own address: in the pod range, on this host only
RULE_TAG="coalmine-localcluster"
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
