#!/usr/bin/env bash
# Builds Traefik, the Gateway API implementation the gatewayAPI router is
# tested against, from Go modules, and packs it as the image
# coalmine/traefik:<version> (the static binary and /tmp, UID 65532). No
# release binary, no registry, no Docker daemon.
#
# Traefik's own build does not work from this machine's module proxy as is, so
# a wrapper module builds cmd/traefik with three substitutions, made here at
# build time (nothing of Traefik's is committed):
#   - lego's DNS-challenge provider registry is cut to none: a dozen of the
#     cloud DNS SDKs it links are not served. ACME DNS challenges are off in
#     this build; nothing here uses ACME.
#   - Traefik's fork of github.com/abbot/go-http-auth is taken at the newest
#     version the proxy serves (2020) instead of the unpublished one it pins.
#   - github.com/traefik/traefik/dynamic/ext, a nested module left out of the
#     published zip, becomes its open-source shape: two empty structs.
# Binary and image are cached under ${COALMINE_CACHE:-~/.cache/coalmine}/
# traefik-<version>/; the archive is copied to _out/images/coalmine-traefik.tar.
#
# Environment: TRAEFIK_VERSION, COALMINE_CACHE, COALMINE_IMAGES_OUT.
set -euo pipefail

# Newest Traefik v3 on the Go module proxy when this was written
# (`go list -m -versions github.com/traefik/traefik/v3`); bump deliberately.
TRAEFIK_VERSION="${TRAEFIK_VERSION:-v3.7.13}"
MODULE=github.com/traefik/traefik/v3

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "$here/../.." && pwd)"
out_dir="${COALMINE_IMAGES_OUT:-$repo/_out/images}"

# step, die, run_logged: one progress line per step; go's output in a log
# shellcheck source=../lib/progress.sh
source "$(dirname "${BASH_SOURCE[0]}")/../lib/progress.sh"

command -v go >/dev/null || die "go is required to build traefik"

cache="${COALMINE_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/coalmine}"
dir="$cache/traefik-$TRAEFIK_VERSION"
bin="$dir/traefik"
image="$dir/coalmine-traefik.tar"
mkdir -p "$dir" "$out_dir"

module_dir() { go mod download -json "$1" 2>>"$log" | python3 -c 'import json, sys; print(json.load(sys.stdin)["Dir"])'; }

if [[ ! -x $bin ]]; then
  work="$cache/build/traefik-$TRAEFIK_VERSION"
  rm -rf "$work"
  mkdir -p "$work/ext"
  cd "$work"
  log="$cache/build/traefik-$TRAEFIK_VERSION.log"
  : >"$log"
  step "downloading traefik $TRAEFIK_VERSION and lego sources (1/3)"
  printf 'module coalmine.dev/hack/traefik\n\ngo 1.26.0\n' >go.mod
  src="$(module_dir "$MODULE@$TRAEFIK_VERSION")"
  lego_version="$(awk '$1 == "github.com/go-acme/lego/v5" {print $2}' "$src/go.mod")"
  [[ -n $lego_version ]] || die "cannot find the lego version in traefik $TRAEFIK_VERSION's go.mod"
  cp -r "$(module_dir "github.com/go-acme/lego/v5@$lego_version")" lego
  chmod -R u+w lego
  cat >lego/providers/dns/zz_gen_dns_providers.go <<'GO'
// Package dns is cut down by coalmine's hack/gateway/build.sh: no DNS provider.
package dns

import (
	"fmt"

	"github.com/go-acme/lego/v5/challenge"
)

// NewDNSChallengeProviderByName refuses every provider in this build.
func NewDNSChallengeProviderByName(name string) (challenge.Provider, error) {
	return nil, fmt.Errorf("DNS provider %s: ACME DNS challenges are not built in", name)
}
GO
  printf 'module github.com/traefik/traefik/dynamic/ext\n\ngo 1.24\n' >ext/go.mod
  cat >ext/ext.go <<'GO'
// Package ext holds the extension points of Traefik's dynamic configuration.
package ext

// HTTP extends the HTTP configuration; empty in open-source builds.
type HTTP struct{}

// Router extends a router; empty in open-source builds.
type Router struct{}
GO
  cat >>go.mod <<MOD

require $MODULE $TRAEFIK_VERSION

replace (
	github.com/traefik/traefik/dynamic/ext => ./ext
	github.com/go-acme/lego/v5 => ./lego
	github.com/abbot/go-http-auth => github.com/containous/go-http-auth v0.4.1-0.20200324110947-a37a7636d23e
	github.com/gorilla/mux => $(awk '$1 == "github.com/gorilla/mux" && $2 == "=>" {print $3, $4}' "$src/go.mod")
)
MOD
  cp "$src/go.sum" go.sum
  chmod u+w go.sum
  step "building traefik $TRAEFIK_VERSION from Go modules (2/3; several minutes, cached after)"
  run_logged "$log" env CGO_ENABLED=0 GOFLAGS=-mod=mod nice -n 10 go build -trimpath \
    -ldflags "-s -w -X $MODULE/pkg/version.Version=$TRAEFIK_VERSION" \
    -o "$bin.tmp" "$MODULE/cmd/traefik"
  mv "$bin.tmp" "$bin"
  step "traefik built: $("$bin" version | head -1)"
fi

if [[ ! -f $image || $bin -nt $image ]]; then
  rootfs="$(mktemp -d)"
  trap 'rm -rf "$rootfs"' EXIT
  install -m 0755 "$bin" "$rootfs/traefik"
  mkdir -m 1777 "$rootfs/tmp"
  step "packing coalmine/traefik:$TRAEFIK_VERSION (3/3)"
  python3 "$repo/hack/images/mkimage.py" --rootfs "$rootfs" \
    --name "coalmine/traefik:$TRAEFIK_VERSION" --output "$image.tmp" \
    --entrypoint '["/traefik"]' --user 65532:65532 --workdir /tmp \
    --label "org.opencontainers.image.title=coalmine-traefik" \
    --label "org.opencontainers.image.version=$TRAEFIK_VERSION"
  mv "$image.tmp" "$image"
fi
cp "$image" "$out_dir/coalmine-traefik.tar"
step "image ready: $out_dir/coalmine-traefik.tar ($(du -h "$image" | cut -f1))"
