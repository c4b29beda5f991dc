#!/usr/bin/env bash
# Stops the local cluster and removes everything it left on the host:
# processes, containers, mounts, network namespaces, iptables rules, routes,
# cgroups and state. The build cache stays.
source "$(dirname "$0")/lib.sh"
set +e

step "stopping the local cluster"
stop kubelet
stop kube-proxy
if pid_of containerd >/dev/null; then
  # Kill every pod's processes through containerd before stopping it.
  for id in $(ctr_k8s tasks ls -q 2>/dev/null); do ctr_k8s tasks kill -s SIGKILL "$id" >/dev/null 2>&1; done
  sleep 1
  for id in $(ctr_k8s tasks ls -q 2>/dev/null); do ctr_k8s tasks delete -f "$id" >/dev/null 2>&1; done
fi
stop containerd
for c in kube-scheduler kube-controller-manager kube-apiserver etcd; do stop "$c"; done
# Shims outlive containerd; they belong to this cluster if they use its state.
for pid in $(pgrep -f "containerd-shim.*-address $CONTAINERD_SOCK" 2>/dev/null); do kill -9 "$pid" 2>/dev/null; done

if [[ -x "$BIN_DIR/kube-proxy" ]]; then "$BIN_DIR/kube-proxy" --cleanup >/dev/null 2>&1; fi

for ns in $(ip netns list 2>/dev/null | awk '/^cni-/{print $1}'); do ip netns delete "$ns"; done
# Unmount everything below the state and run dirs, deepest first.
awk -v s="$STATE_DIR" -v r="$RUN_DIR" '$5 ~ "^(" s "|" r ")" {print $5}' /proc/self/mountinfo \
  | sort -r | while read -r m; do umount -l "$m" 2>/dev/null; done

for ipt in iptables ip6tables; do
  command -v "$ipt-save" >/dev/null || continue
  for table in filter nat mangle; do
    rules="$("$ipt-save" -t "$table" 2>/dev/null)"
    if grep -qE "KUBE-|CNI-|$RULE_TAG" <<<"$rules"; then
      grep -vE "KUBE-|CNI-|$RULE_TAG" <<<"$rules" | "$ipt-restore"
    fi
  done
done
ip route del unreachable "$POD_CIDR" 2>/dev/null
ip route del unreachable "$SERVICE_CIDR" 2>/dev/null
ip link del "$BRIDGE" 2>/dev/null
if [[ -f "$STATE_DIR/ip_forward.saved" ]]; then sysctl -qw "net.ipv4.ip_forward=$(cat "$STATE_DIR/ip_forward.saved")"; fi
for d in /sys/fs/cgroup/*/kubepods /sys/fs/cgroup/*/kubepods.slice; do
  [[ -d "$d" ]] && find "$d" -depth -type d -exec rmdir {} + 2>/dev/null
done
rm -rf "$STATE_DIR" "$RUN_DIR"
step "local cluster down"
