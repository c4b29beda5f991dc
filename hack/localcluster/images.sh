#!/usr/bin/env bash
# Packs the cluster's own images (pause, CoreDNS, metrics-server) from the built binaries and
# imports them into the cluster's containerd: there is no registry to pull from.
source "$(dirname "$0")/lib.sh"

IMG_DIR="$CACHE_DIR/kubernetes-$KUBE_VERSION/images"
mkdir -p "$IMG_DIR"

# image_from_binary NAME REF BINARY USER -> an archive holding just that binary.
image_from_binary() {
  local name="$1" ref="$2" bin="$3" user="$4" out="$IMG_DIR/$1.tar"
  if [[ ! -f "$out" || "$bin" -nt "$out" ]]; then
    local root; root="$(mktemp -d)"
    install -m 0755 "$bin" "$root/$name"
    mkdir -m 1777 "$root/tmp"
    python3 "$LC_DIR/../images/mkimage.py" --rootfs "$root" --name "$ref" --output "$out.tmp" \
      --entrypoint "[\"/$name\"]" --user "$user"
    mv "$out.tmp" "$out"
    rm -rf "$root"
  fi
  ctr_k8s images import "$out" >/dev/null
  info "image $ref"
}

image_from_binary pause "$PAUSE_IMAGE" "$BIN_DIR/pause" 65535
image_from_binary coredns "$COREDNS_IMAGE" "$BIN_DIR/coredns" 65532
image_from_binary metrics-server "$METRICS_SERVER_IMAGE" "$BIN_DIR/metrics-server" 65532
