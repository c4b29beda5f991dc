#!/usr/bin/env bash
# Builds the Kubernetes components, etcd and CoreDNS from Go modules at the
# pinned versions, into a cache keyed by version: a second run is a no-op.
# One progress line per binary ("==> building kube-apiserver v1.34.4 (1/9) 0s");
# go's own output goes to $CACHE_DIR/build/logs/NAME.log, shown when it fails.
source "$(dirname "$0")/lib.sh"

command -v go >/dev/null || die "go is required to build the cluster components"

KUBE_COMPONENTS=(kube-apiserver kube-controller-manager kube-scheduler kubelet kube-proxy kubectl)
ALL=("${KUBE_COMPONENTS[@]}" etcd coredns metrics-server pause)
LOGS="$CACHE_DIR/build/logs"
KUBE_WORK="$CACHE_DIR/build/kubernetes-$KUBE_VERSION"

# The wrapper module that builds k8s.io/kubernetes' cmd/* (written once per run).
prepare_kubernetes() {
  [[ -f "$KUBE_WORK/.prepared" ]] && return
  local staging="v0.${KUBE_VERSION#v1.}"
  mkdir -p "$KUBE_WORK" "$BIN_DIR"
  # k8s.io/kubernetes replaces its staging modules with local paths that a
  # dependent module cannot see: point each at its published release instead.
  local mod
  mod="$(curl -fsSL "${GOPROXY_URL:-https://proxy.golang.org}/k8s.io/kubernetes/@v/$KUBE_VERSION.mod")" \
    || mod="$(cd "$KUBE_WORK" && go mod download -json "k8s.io/kubernetes@$KUBE_VERSION" 2>>"$LOGS/modules.log" | python3 -c 'import json,sys; print(open(json.load(sys.stdin)["GoMod"]).read())')"
  {
    echo "module coalmine.dev/localcluster/kubernetes"
    echo
    echo "go 1.24"
    echo
    echo "require k8s.io/kubernetes $KUBE_VERSION"
    echo
    echo "replace ("
    grep -oE '^\s+k8s\.io/[a-z0-9-]+ => \./staging' <<<"$mod" | awk -v v="$staging" '{print "\t" $1 " => " $1 " " v}'
    echo ")"
  } >"$KUBE_WORK/go.mod"
  touch "$KUBE_WORK/.prepared"
}

build_kube_component() {
  local c="$1" minor="${KUBE_VERSION#v1.}"
  minor="${minor%%.*}"
  prepare_kubernetes
  local ldflags="-s -w"
  local pkg=k8s.io/component-base/version
  ldflags+=" -X $pkg.gitVersion=$KUBE_VERSION -X $pkg.gitMajor=1 -X $pkg.gitMinor=$minor"
  ldflags+=" -X $pkg.gitTreeState=clean -X $pkg.buildDate=1970-01-01T00:00:00Z"
  run_logged "$LOGS/$c.log" env -C "$KUBE_WORK" CGO_ENABLED=0 GOFLAGS=-mod=mod \
    go build -trimpath -ldflags "$ldflags" -o "$BIN_DIR/$c.tmp" "k8s.io/kubernetes/cmd/$c"
  mv "$BIN_DIR/$c.tmp" "$BIN_DIR/$c"
}

build_etcd() {
  local work="$CACHE_DIR/build/etcd-$ETCD_VERSION"
  mkdir -p "$work"
  printf 'module coalmine.dev/localcluster/etcd\n\ngo 1.24\n\nrequire go.etcd.io/etcd/server/v3 %s\n' \
    "$ETCD_VERSION" >"$work/go.mod"
  run_logged "$LOGS/etcd.log" env -C "$work" CGO_ENABLED=0 GOFLAGS=-mod=mod \
    go build -trimpath -ldflags "-s -w" -o "$BIN_DIR/etcd.tmp" go.etcd.io/etcd/server/v3
  mv "$BIN_DIR/etcd.tmp" "$BIN_DIR/etcd"
}

build_coredns() {
  local work="$CACHE_DIR/build/coredns-$COREDNS_VERSION"
  mkdir -p "$work"
  printf 'module coalmine.dev/localcluster/coredns\n\ngo 1.23\n\nrequire github.com/coredns/coredns %s\n' \
    "$COREDNS_VERSION" >"$work/go.mod"
  run_logged "$LOGS/coredns.log" env -C "$work" CGO_ENABLED=0 GOFLAGS=-mod=mod \
    go build -trimpath -ldflags "-s -w" -o "$BIN_DIR/coredns.tmp" github.com/coredns/coredns
  mv "$BIN_DIR/coredns.tmp" "$BIN_DIR/coredns"
}

build_metrics_server() {
  local work="$CACHE_DIR/build/metrics-server-$METRICS_SERVER_VERSION"
  mkdir -p "$work"
  printf 'module coalmine.dev/localcluster/metrics-server\n\ngo 1.26.4\n\nrequire sigs.k8s.io/metrics-server %s\n' \
    "$METRICS_SERVER_VERSION" >"$work/go.mod"
  local ldflags="-s -w -X k8s.io/client-go/pkg/version.gitVersion=$METRICS_SERVER_VERSION"
  run_logged "$LOGS/metrics-server.log" env -C "$work" CGO_ENABLED=0 GOFLAGS=-mod=mod \
    go build -trimpath -ldflags "$ldflags" -o "$BIN_DIR/metrics-server.tmp" \
    sigs.k8s.io/metrics-server/cmd/metrics-server
  mv "$BIN_DIR/metrics-server.tmp" "$BIN_DIR/metrics-server"
}

build_pause() {
  local work="$CACHE_DIR/build/pause"
  mkdir -p "$work"
  cp "$LC_DIR/images/pause/main.go" "$work/main.go"
  printf 'module coalmine.dev/localcluster/pause\n\ngo 1.22\n' >"$work/go.mod"
  run_logged "$LOGS/pause.log" env -C "$work" CGO_ENABLED=0 \
    go build -trimpath -ldflags "-s -w" -o "$BIN_DIR/pause" .
}

version_of() {
  case "$1" in
    etcd) echo "$ETCD_VERSION" ;;
    coredns) echo "$COREDNS_VERSION" ;;
    metrics-server) echo "$METRICS_SERVER_VERSION" ;;
    pause) echo "${PAUSE_IMAGE##*:}" ;;
    *) echo "$KUBE_VERSION" ;;
  esac
}

todo=()
for c in "${ALL[@]}"; do [[ -x "$BIN_DIR/$c" ]] || todo+=("$c"); done
if ((${#todo[@]} == 0)); then
  step "all ${#ALL[@]} binaries cached in $BIN_DIR"
  exit 0
fi
mkdir -p "$LOGS" "$BIN_DIR"
n=${#todo[@]}
i=0
for c in "${todo[@]}"; do
  i=$((i + 1))
  step "building $c $(version_of "$c") ($i/$n)"
  case "$c" in
    etcd) build_etcd ;;
    coredns) build_coredns ;;
    metrics-server) build_metrics_server ;;
    pause) build_pause ;;
    *) build_kube_component "$c" ;;
  esac
done
step "built $n binaries into $BIN_DIR"
