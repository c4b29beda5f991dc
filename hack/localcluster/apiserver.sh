#!/usr/bin/env bash
# Stops or starts the local cluster's kube-apiserver alone, everything else left
# running: an API-server outage as a control-plane upgrade or crash makes one.
# etcd keeps the state; kubelet, kube-proxy and the pods keep running and
# serving while the API server is gone.
#
#   hack/localcluster/apiserver.sh stop    SIGTERM, then SIGKILL after 10 s
#   hack/localcluster/apiserver.sh start   start it with up.sh's flags; wait for /readyz
source "$(dirname "$0")/lib.sh"

[[ $EUID -eq 0 ]] || die "the local cluster needs root"
pid_of etcd >/dev/null || die "the local cluster is not running (no etcd)"
case "${1:-}" in
  stop)
    step "stopping kube-apiserver"
    stop kube-apiserver
    ;;
  start)
    if pid_of kube-apiserver >/dev/null && kc get --raw /readyz >/dev/null 2>&1; then
      step "kube-apiserver already running"
      exit 0
    fi
    step "starting kube-apiserver"
    stop kube-apiserver  # one that hangs unready
    start_apiserver
    wait_until "kube-apiserver" 120 kc get --raw /readyz
    step "kube-apiserver ready"
    ;;
  *) die "usage: $0 stop|start" ;;
esac
