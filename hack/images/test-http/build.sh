#!/usr/bin/env bash
# Builds the smoke-test HTTP server (static Go binary, stdlib only) and packs
# it as the image coalmine/test-http:<tag>: a root filesystem holding only the
# binary and /tmp, run as UID 65532. No registry, no Docker daemon needed.
#
#   hack/images/test-http/build.sh            -> _out/images/coalmine-test-http.tar
#
# Environment: IMAGE_TAG (default 0.1.0), COALMINE_IMAGES_OUT (default _out/images).
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "$here/../../.." && pwd)"
tag="${IMAGE_TAG:-0.1.0}"
out_dir="${COALMINE_IMAGES_OUT:-$repo/_out/images}"
output="$out_dir/coalmine-test-http.tar"

# step, die: one progress line per step, with the time elapsed
# shellcheck source=../../lib/progress.sh
source "$here/../../lib/progress.sh"

command -v go >/dev/null || die "go is required to build the test HTTP server"

work="$out_dir/.work/test-http"
rootfs="$work/rootfs"
rm -rf "$work"
mkdir -p "$rootfs/tmp"
chmod 1777 "$rootfs/tmp"

step "building test-http (CGO_ENABLED=0, static)"
(cd "$here" && CGO_ENABLED=0 GOFLAGS=-mod=mod go build -trimpath -buildvcs=false \
  -ldflags "-s -w" -o "$rootfs/test-http" .)
chmod 0755 "$rootfs/test-http"

step "packing coalmine/test-http:$tag"
python3 "$repo/hack/images/mkimage.py" --rootfs "$rootfs" --name "coalmine/test-http:$tag" \
  --output "$output" --entrypoint '["/test-http"]' --user 65532:65532 --workdir /tmp \
  --expose 8080 --env "VERSION=$tag" \
  --label "org.opencontainers.image.title=coalmine-test-http" \
  --label "org.opencontainers.image.version=$tag"
rm -rf "$work"
step "image ready: $output ($(du -h "$output" | cut -f1))"
