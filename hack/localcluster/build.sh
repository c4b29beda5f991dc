#!/usr/bin/env bash
# Builds the Kubernetes components, etcd and CoreDNS from Go modules at the
# pinned versions, into a cache keyed by version: a second run is a no-op.
source "$(dirname "$0")/lib.sh"

command -v go >/dev/null || die "go is required to build the cluster components"

build_kubernetes() {
  local minor="${KUBE_VERSION#v1.}"; minor="${minor%%.*}"
  local staging="v0.${KUBE_VERSION#v1.}"
  local work="$CACHE_DIR/build/kubernetes-$KUBE_VERSION"
  mkdir -p "$work" "$BIN_DIR"
  # k8s.io/kubernetes replaces its staging modules with local paths that a
  # dependent module cannot see: point each at its published release instead.
  local mod
  mod="$(curl -fsSL "${GOPROXY_URL:-https://proxy.golang.org}/k8s.io/kubernetes/@v/$KUBE_VERSION.mod")" \
    || mod="$(cd "$work" && go mod download -json "k8s.io/kubernetes@$KUBE_VERSION" | python3 -c 'import json,sys; print(open(json.load(sys.stdin)["GoMod"]).read())')"
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
  } >"$work/go.mod"
  local ldflags="-s -w"
  local pkg=k8s.io/component-base/version
  ldflags+=" -X $pkg.gitVersion=$KUBE_VERSION -X $pkg.gitMajor=1 -X $pkg.gitMinor=$minor"
  ldflags+=" -X $pkg.gitTreeState=clean -X $pkg.buildDate=1970-01-01T00:00:00Z"
  local c
  for c in kube-apiserver kube-controller-manager kube-scheduler kubelet kube-proxy kubectl; do
    [[ -x "$BIN_DIR/$c" ]] && continue
    step "building $c $KUBE_VERSION (cached after the first build)"
    (cd "$work" && CGO_ENABLED=0 GOFLAGS=-mod=mod go build -trimpath -ldflags "$ldflags" \
      -o "$BIN_DIR/$c.tmp" "k8s.io/kubernetes/cmd/$c") && mv "$BIN_DIR/$c.tmp" "$BIN_DIR/$c"
  done
}

build_etcd() {
  [[ -x "$BIN_DIR/etcd" ]] && return
  step "building etcd $ETCD_VERSION"
  local work="$CACHE_DIR/build/etcd-$ETCD_VERSION"
  mkdir -p "$work"
  printf 'module coalmine.dev/localcluster/etcd\n\ngo 1.24\n\nrequire go.etcd.io/etcd/server/v3 %s\n' \
    "$ETCD_VERSION" >"$work/go.mod"
  (cd "$work" && CGO_ENABLED=0 GOFLAGS=-mod=mod go build -trimpath -ldflags "-s -w" \
    -o "$BIN_DIR/etcd.tmp" go.etcd.io/etcd/server/v3) && mv "$BIN_DIR/etcd.tmp" "$BIN_DIR/etcd"
}

build_coredns() {
  [[ -x "$BIN_DIR/coredns" ]] && return
  step "building coredns $COREDNS_VERSION"
  local work="$CACHE_DIR/build/coredns-$COREDNS_VERSION"
  mkdir -p "$work"
  printf 'module coalmine.dev/localcluster/coredns\n\ngo 1.23\n\nrequire github.com/coredns/coredns %s\n' \
    "$COREDNS_VERSION" >"$work/go.mod"
  (cd "$work" && CGO_ENABLED=0 GOFLAGS=-mod=mod go build -trimpath -ldflags "-s -w" \
    -o "$BIN_DIR/coredns.tmp" github.com/coredns/coredns) && mv "$BIN_DIR/coredns.tmp" "$BIN_DIR/coredns"
}

build_pause() {
  [[ -x "$BIN_DIR/pause" ]] && return
  step "building pause"
  local work="$CACHE_DIR/build/pause"
  mkdir -p "$work"
  cp "$LC_DIR/images/pause/main.go" "$work/main.go"
  printf 'module coalmine.dev/localcluster/pause\n\ngo 1.22\n' >"$work/go.mod"
  (cd "$work" && CGO_ENABLED=0 go build -trimpath -ldflags "-s -w" -o "$BIN_DIR/pause" .)
}

build_kubernetes
build_etcd
build_coredns
build_pause
step "binaries ready in $BIN_DIR"
