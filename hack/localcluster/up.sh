#!/usr/bin/env bash
# Starts a real single-node Kubernetes cluster as processes on this host:
# etcd, kube-apiserver, controller-manager, scheduler, containerd, kubelet,
# kube-proxy, CoreDNS and metrics-server. Idempotent: a running, healthy cluster is left alone.
source "$(dirname "$0")/lib.sh"

[[ $EUID -eq 0 ]] || die "the local cluster needs root (network namespaces, cgroups, mounts)"
START=$SECONDS

if pid_of kube-apiserver >/dev/null && pid_of kubelet >/dev/null \
   && kc get --raw /readyz >/dev/null 2>&1; then
  step "cluster already running"
  echo "$KUBECONFIG_PATH"
  exit 0
fi
# A half-started cluster is torn down first so that every start is a clean one.
if [[ -d "$STATE_DIR/pids" ]]; then
  step "cleaning up a previous, incomplete cluster"
  "$LC_DIR/down.sh"
fi

step "checking host packages"
missing=()
for pair in containerd:containerd runc:runc /usr/lib/cni/bridge:containernetworking-plugins \
            iptables:iptables conntrack:conntrack openssl:openssl ip:iproute2 curl:curl; do
  bin="${pair%%:*}"; pkg="${pair#*:}"
  if [[ "$bin" == /* ]]; then [[ -e "$bin" ]] || missing+=("$pkg")
  else command -v "$bin" >/dev/null || missing+=("$pkg"); fi
done
if ((${#missing[@]})); then
  info "installing ${missing[*]} from Debian"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
fi

step "building components ($KUBE_VERSION, etcd $ETCD_VERSION, CoreDNS $COREDNS_VERSION)"
"$LC_DIR/build.sh"

mkdir -p "$STATE_DIR"/{pids,logs,etcd,kubelet,cni/net.d,cni/ipam,containerd} "$RUN_DIR"

step "network: bridge $BRIDGE ($NODE_IP), blackhole routes for $POD_CIDR and $SERVICE_CIDR"
sysctl -n net.ipv4.ip_forward >"$STATE_DIR/ip_forward.saved"
sysctl -qw net.ipv4.ip_forward=1
sysctl -qw net.bridge.bridge-nf-call-iptables=1
ip link show "$BRIDGE" >/dev/null 2>&1 || ip link add "$BRIDGE" type bridge
ip addr replace "$NODE_IP/24" dev "$BRIDGE"
ip link set "$BRIDGE" up
# Nothing in the pod or service ranges may leave the host: any address there
# that is not a live pod on the bridge is unreachable.
ip route replace unreachable "$POD_CIDR"
ip route replace unreachable "$SERVICE_CIDR"
# Pods may talk to each other and to this host, never be forwarded elsewhere.
iptables -C FORWARD -i "$BRIDGE" ! -o "$BRIDGE" -j REJECT -m comment --comment "$RULE_TAG" 2>/dev/null \
  || iptables -I FORWARD 1 -i "$BRIDGE" ! -o "$BRIDGE" -j REJECT -m comment --comment "$RULE_TAG"

step "certificates and kubeconfigs"
"$LC_DIR/pki.sh" "$NODE_IP"

cat >"$STATE_DIR/cni/net.d/10-coalmine.conflist" <<CNI
{
  "cniVersion": "0.4.0",
  "name": "coalmine",
  "plugins": [
    {"type": "bridge", "bridge": "$BRIDGE", "isGateway": true, "ipMasq": false, "hairpinMode": true,
     "ipam": {"type": "host-local", "dataDir": "$STATE_DIR/cni/ipam",
              "ranges": [[{"subnet": "$NODE_POD_CIDR", "gateway": "$NODE_IP"}]],
              "routes": [{"dst": "0.0.0.0/0"}]}},
    {"type": "portmap", "capabilities": {"portMappings": true}},
    {"type": "loopback"}
  ]
}
CNI

cat >"$STATE_DIR/containerd.toml" <<TOML
version = 2
root = "$STATE_DIR/containerd/root"
state = "$RUN_DIR/containerd-state"
[grpc]
  address = "$CONTAINERD_SOCK"
[plugins."io.containerd.internal.v1.opt"]
  path = "$STATE_DIR/containerd/opt"
[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "$PAUSE_IMAGE"
  # This host withholds CAP_SYS_RESOURCE, so nothing may lower its OOM score:
  # clamp the kubelet's negative oom_score_adj values at containerd's own.
  restrict_oom_score_adj = true
  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "overlayfs"
    default_runtime_name = "runc"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
        SystemdCgroup = false
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "/usr/lib/cni"
    conf_dir = "$STATE_DIR/cni/net.d"
TOML

cat >"$STATE_DIR/kubelet.yaml" <<YAML
apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
authentication:
  anonymous: {enabled: false}
  webhook: {enabled: true}
  x509: {clientCAFile: $PKI/ca.crt}
authorization: {mode: Webhook}
cgroupDriver: cgroupfs
containerRuntimeEndpoint: unix://$CONTAINERD_SOCK
clusterDNS: [$DNS_SVC_IP]
clusterDomain: $CLUSTER_DOMAIN
resolvConf: ""
tlsCertFile: $PKI/kubelet.crt
tlsPrivateKeyFile: $PKI/kubelet.key
failSwapOn: false
readOnlyPort: 0
healthzBindAddress: 127.0.0.1
serializeImagePulls: false
# Images exist only locally (there is no registry): never garbage-collect them.
imageGCHighThresholdPercent: 100
imageGCLowThresholdPercent: 99
evictionHard: {memory.available: "100Mi", nodefs.available: "1%", imagefs.available: "1%", nodefs.inodesFree: "1%"}
maxPods: 250
YAML

cat >"$STATE_DIR/kube-proxy.yaml" <<YAML
apiVersion: kubeproxy.config.k8s.io/v1alpha1
kind: KubeProxyConfiguration
clientConnection: {kubeconfig: $STATE_DIR/kube-proxy.kubeconfig}
mode: iptables
clusterCIDR: $POD_CIDR
hostnameOverride: $NODE_NAME
bindAddress: 127.0.0.1
healthzBindAddress: 127.0.0.1:10256
metricsBindAddress: 127.0.0.1:10249
nodePortAddresses: ["127.0.0.0/8", "$NODE_IP/32"]
conntrack: {maxPerCore: 0}
iptables: {localhostNodePorts: true}
YAML

step "control plane"
start etcd "$BIN_DIR/etcd" --name coalmine --data-dir "$STATE_DIR/etcd" \
  --listen-client-urls https://127.0.0.1:2379 --advertise-client-urls https://127.0.0.1:2379 \
  --listen-peer-urls http://127.0.0.1:2380 --initial-advertise-peer-urls http://127.0.0.1:2380 \
  --initial-cluster coalmine=http://127.0.0.1:2380 --listen-metrics-urls http://127.0.0.1:2381 \
  --cert-file "$PKI/etcd.crt" --key-file "$PKI/etcd.key" --trusted-ca-file "$PKI/ca.crt" \
  --client-cert-auth --unsafe-no-fsync --log-level warn
wait_until "etcd" 60 curl -sf http://127.0.0.1:2381/health

start_apiserver
wait_until "kube-apiserver" 120 kc get --raw /readyz

# The node's heartbeat goes through this host's API server, so an API-server outage
# (hack/localcluster/apiserver.sh) is not a dead node: the grace before the node
# controller calls it NotReady, and takes every pod out of the endpoints, outlasts the
# outages the tests make and the kubelet's reconnect after them (the default is 50 s).
# At 120 s one clean run saw the node NotReady 66 s after a 50 s outage ended, 120 s
# after the kubelet's last heartbeat before it: its lease was not renewed in between.
#
# Its client's default rate (20 requests/s, bursts of 30) makes the Deployment
# controller, not the operator, the bottleneck when many objects change at once: every
# new Deployment costs it a ReplicaSet and status writes, so 500 Deployments applied
# together waited about 100 s for their status (benchmarks/operator). Clusters that
# run many workloads raise it the same way.
start kube-controller-manager "$BIN_DIR/kube-controller-manager" \
  --node-monitor-grace-period 300s --kube-api-qps 200 --kube-api-burst 400 \
  --kubeconfig "$STATE_DIR/controller-manager.kubeconfig" \
  --authentication-kubeconfig "$STATE_DIR/controller-manager.kubeconfig" \
  --authorization-kubeconfig "$STATE_DIR/controller-manager.kubeconfig" \
  --bind-address 127.0.0.1 --leader-elect=false --use-service-account-credentials \
  --cluster-signing-cert-file "$PKI/ca.crt" --cluster-signing-key-file "$PKI/ca.key" \
  --root-ca-file "$PKI/ca.crt" --service-account-private-key-file "$PKI/sa.key" \
  --service-cluster-ip-range "$SERVICE_CIDR" --cluster-cidr "$POD_CIDR" --allocate-node-cidrs=false
start kube-scheduler "$BIN_DIR/kube-scheduler" \
  --kubeconfig "$STATE_DIR/scheduler.kubeconfig" \
  --authentication-kubeconfig "$STATE_DIR/scheduler.kubeconfig" \
  --authorization-kubeconfig "$STATE_DIR/scheduler.kubeconfig" \
  --bind-address 127.0.0.1 --leader-elect=false

step "node: containerd, kubelet, kube-proxy"
start containerd containerd --config "$STATE_DIR/containerd.toml"
wait_until "containerd" 60 ctr_k8s version
"$LC_DIR/images.sh"
start kubelet "$BIN_DIR/kubelet" --config "$STATE_DIR/kubelet.yaml" \
  --kubeconfig "$STATE_DIR/kubelet.kubeconfig" --hostname-override "$NODE_NAME" \
  --node-ip "$NODE_IP" --root-dir "$STATE_DIR/kubelet" --cert-dir "$STATE_DIR/kubelet/pki" --v 1
start kube-proxy "$BIN_DIR/kube-proxy" --config "$STATE_DIR/kube-proxy.yaml"
wait_until "node $NODE_NAME Ready" 120 \
  kc wait --for=condition=Ready "node/$NODE_NAME" --timeout=2s

step "cluster DNS (CoreDNS)"
sed -e "s|@DNS_SVC_IP@|$DNS_SVC_IP|g" -e "s|@IMAGE@|$COREDNS_IMAGE|g" \
  -e "s|@DOMAIN@|$CLUSTER_DOMAIN|g" "$LC_DIR/manifests/coredns.yaml" | kc apply -f - >/dev/null
wait_until "CoreDNS rollout" 120 \
  kc -n kube-system rollout status deployment/coredns --timeout=2s
wait_until "default ServiceAccount" 60 kc -n default get serviceaccount default

# The metrics API: what `kubectl top` and HorizontalPodAutoscalers read. Not waited for:
# its first figures come one scrape (15 s) after it starts.
step "metrics-server"
sed -e "s|@IMAGE@|$METRICS_SERVER_IMAGE|g" "$LC_DIR/manifests/metrics-server.yaml" | kc apply -f - >/dev/null

step "cluster up in $((SECONDS - START))s ($KUBE_VERSION); kubeconfig:"
echo "$KUBECONFIG_PATH"
