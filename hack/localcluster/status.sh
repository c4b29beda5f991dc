#!/usr/bin/env bash
# Shows the local cluster's processes and node; `--kubeconfig` prints only
# the kubeconfig path (for scripts) and fails when the cluster is not up.
source "$(dirname "$0")/lib.sh"

if [[ "${1:-}" == "--kubeconfig" ]]; then
  pid_of kube-apiserver >/dev/null || die "the local cluster is not running"
  echo "$KUBECONFIG_PATH"
  exit 0
fi
running=0
for c in "${COMPONENTS[@]}"; do
  if pid="$(pid_of "$c")"; then printf '  %-24s running (pid %s)\n' "$c" "$pid"; running=$((running + 1))
  else printf '  %-24s stopped\n' "$c"; fi
done
if ((running == 0)); then echo "local cluster: down"; exit 1; fi
echo "kubeconfig: $KUBECONFIG_PATH  (Kubernetes $KUBE_VERSION)"
kc get nodes -o wide 2>/dev/null || true
((running == ${#COMPONENTS[@]}))
