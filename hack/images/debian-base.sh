#!/usr/bin/env bash
# Builds a minimal Debian 12 (bookworm) root filesystem with Python 3.11 and
# the CA bundle, from Debian packages only (debootstrap --variant=minbase).
#
# The result is cached under
#   ${COALMINE_CACHE:-~/.cache/coalmine}/images/debian-base-<hash>/rootfs
# where <hash> covers the suite, the package list and the strip rules, so a
# second run is instant. Progress goes to stderr; the rootfs path is printed
# on stdout, for callers:  base="$(hack/images/debian-base.sh)".
#
# Environment:
#   COALMINE_CACHE          cache root (default ~/.cache/coalmine)
#   COALMINE_DEBIAN_MIRROR  mirror URL (default: the host's apt source for bookworm)
#   COALMINE_BASE_PACKAGES  extra packages, space separated (default: none)
set -euo pipefail

SUITE=bookworm
VARIANT=minbase
PACKAGES="ca-certificates python3 ${COALMINE_BASE_PACKAGES:-}"
# Bump when the strip or fix-up rules below change: it is part of the cache key.
RULES_VERSION=1

# step, info, die: one progress line per step, with the time elapsed
# shellcheck source=../lib/progress.sh
source "$(dirname "${BASH_SOURCE[0]}")/../lib/progress.sh"

[[ $(id -u) -eq 0 ]] || die "run as root: debootstrap and numeric file owners need it"
command -v debootstrap >/dev/null || die "debootstrap is missing (apt-get install debootstrap)"

# The mirror of the host's apt sources that serves the suite (deb822 *.sources
# or one-line *.list); files disabled by renaming are not read.
host_mirror() {
  local f
  for f in /etc/apt/sources.list.d/*.sources; do
    [[ -f $f ]] || continue
    awk -v suite="$SUITE" '
      function flush() { if (types ~ /(^| )deb( |$)/ && suites ~ ("(^| )" suite "( |$)") && uri != "") { print uri; found = 1; exit } types = suites = uri = "" }
      /^[ \t]*$/ { flush(); next }
      /^[ \t]*#/ { next }
      tolower($1) == "types:" { types = substr($0, index($0, ":") + 2) }
      tolower($1) == "suites:" { suites = substr($0, index($0, ":") + 2) }
      tolower($1) == "uris:" { uri = $2 }
      END { if (!found) flush() }
    ' "$f"
  done
  for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list; do
    [[ -f $f ]] || continue
    awk -v suite="$SUITE" '$1 == "deb" { i = 2; if ($2 ~ /^\[/) { while ($i !~ /\]$/) i++; i++ } if ($(i + 1) == suite) { print $i; exit } }' "$f"
  done
}

mirror="${COALMINE_DEBIAN_MIRROR:-$(host_mirror | head -n1)}"
[[ -n $mirror ]] || die "no apt source for $SUITE found on the host; set COALMINE_DEBIAN_MIRROR"

# Normalised package list (sorted, unique) -> cache key.
read -r -a pkgs <<<"$PACKAGES"
pkg_list="$(printf '%s\n' "${pkgs[@]}" | sort -u | paste -sd, -)"
key="$(printf '%s\n' "$SUITE" "$VARIANT" "$pkg_list" "$RULES_VERSION" | sha256sum | cut -c1-16)"
cache_root="${COALMINE_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/coalmine}/images"
dir="$cache_root/debian-base-$key"

if [[ -f $dir/done ]]; then
  step "debian base cached: $dir/rootfs ($pkg_list)"
  printf '%s\n' "$dir/rootfs"
  exit 0
fi

work="$dir/rootfs.tmp"
cleanup() {
  # debootstrap mounts /proc and /sys inside the target; never leave them behind.
  if [[ -d $work ]]; then
    local m
    while read -r m; do umount -l "$m" 2>/dev/null || true; done \
      < <(awk -v p="$work/" 'index($2, p) == 1 { print $2 }' /proc/mounts | sort -r)
  fi
}
trap cleanup EXIT
cleanup
rm -rf "$work"
mkdir -p "$dir"

step "debootstrap $SUITE ($VARIANT) with $pkg_list from $mirror"
info "into $work (takes a few minutes the first time; cached afterwards)"
keyring=/usr/share/keyrings/debian-archive-keyring.gpg
keyring_arg=()
[[ -f $keyring ]] && keyring_arg=(--keyring="$keyring")
log="$dir/debootstrap.log"
if ! nice -n 10 debootstrap --variant="$VARIANT" --include="$pkg_list" "${keyring_arg[@]}" \
  "$SUITE" "$work" "$mirror" >"$log" 2>&1; then
  tail -n 30 "$log" >&2
  die "debootstrap failed; full log: $log"
fi
awk '/^I: Retrieving/ { r++ } /^I: Extracting/ { e++ } /^I: Configuring/ { c++ }
  END { printf "    retrieved %d, extracted %d, configured %d packages\n", r, e, c }' "$log" >&2
cleanup

step "compiling Python bytecode with unchecked hashes (valid whatever the file times)"
# Debian compiles timestamp-based .pyc files; image layers reset every mtime,
# which would make each one stale (and a read-only root cannot rewrite them).
nice -n 10 chroot "$work" /usr/bin/python3 -m compileall -q -f -j 0 \
  --invalidation-mode unchecked-hash /usr/lib/python3.11 /usr/lib/python3/dist-packages \
  >/dev/null 2>&1 || info "some stdlib files did not compile (they are never imported)"

step "stripping docs, man pages, locales, apt lists and logs"
before="$(du -sm "$work" | cut -f1)"
# Keep the copyright files; drop the rest of /usr/share/doc.
find "$work/usr/share/doc" -mindepth 1 ! -type d ! -name copyright -delete
find "$work/usr/share/doc" -mindepth 1 -type d -empty -delete
rm -rf "$work"/usr/share/{man,info,lintian,linda,groff}/* \
  "$work"/usr/share/locale/* \
  "$work"/var/lib/apt/lists/* \
  "$work"/var/cache/apt/* \
  "$work"/var/cache/debconf/*-old \
  "$work"/var/lib/dpkg/*-old \
  "$work"/var/cache/ldconfig/aux-cache \
  "$work"/var/log/* \
  "$work"/debootstrap
# Files that the container runtime provides, or that must not leak from the host.
: >"$work/etc/resolv.conf"
: >"$work/etc/machine-id"
printf 'localhost\n' >"$work/etc/hostname"
printf '127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n' >"$work/etc/hosts"
after="$(du -sm "$work" | cut -f1)"
info "rootfs ${before} MB -> ${after} MB"

mv "$work" "$dir/rootfs"
printf 'suite=%s\nvariant=%s\npackages=%s\nmirror=%s\n' "$SUITE" "$VARIANT" "$pkg_list" "$mirror" >"$dir/done"
step "debian base ready: $dir/rootfs"
printf '%s\n' "$dir/rootfs"
