#!/usr/bin/env bash
# Builds Argo CD's single `argocd` binary from Go modules and packs it as an
# image, coalmine/argocd:<version>, for the GitOps end-to-end test (issue 18):
# the binary with the names it answers to (argocd-application-controller,
# argocd-repo-server: cmd/main.go dispatches on the name or on
# ARGOCD_BINARY_NAME), on the cached Debian 12 base with git (the repo-server
# execs it), tini (PID 1, reaps the repo-server's git children, as upstream's
# image) and redis-server (the controller and the repo-server cache in Redis
# and have no in-memory option: util/cache always builds a Redis client, by
# default for argocd-redis:6379). One image for the three Deployments. No
# release binary, no registry, no Docker daemon. Also lays out what a test
# applies, without applying it: the Application and AppProject CRDs from the
# same module zip (manifests/crds) and hack/argocd/manifests/install.yaml with
# the image tag filled in.
#
# Version: v3.2.12, the newest Argo CD that builds from the module proxy alone
# with this machine's Go 1.26 and supports Kubernetes 1.34 (Argo CD 3.2 is
# tested on 1.31 to 1.34; its go.mod requires go 1.25.5 and k8s.io 0.34.0).
# The newer lines were refused, each for a reason a version bump must check:
#   - v3.6.0, v3.6.1 (`go list -m -versions github.com/argoproj/argo-cd/v3`;
#     Kubernetes 1.34 to 1.37, k8s.io 0.37): go.mod says `go 1.27.0`. In a
#     copy of the zip, any go command: "go: go.mod requires go >= 1.27.0
#     (running go 1.26.8; GOTOOLCHAIN=local)"; `go mod download -json
#     github.com/argoproj/argo-cd/gitops-engine/v3@v3.6.1` (the engine, now a
#     published module, replaced by the nested ./gitops-engine that the zip
#     leaves out) serves the zip but answers "requires go >= 1.27.0". The
#     engine's v3.6.0 and v3.6.1 also failed `go get` and `go mod tidy` on Go
#     1.27.3. A later try: GOTOOLCHAIN=go1.27.3 and the replace dropped.
#   - v3.4.x, v3.5.x: gitops-engine lives in the argo-cd repository as the
#     nested module github.com/argoproj/argo-cd/gitops-engine, replaced by
#     ./gitops-engine, which the zip leaves out; the placeholder version the
#     go.mod requires is refused: `go list -m -json github.com/argoproj/argo-cd/
#     gitops-engine@v0.7.1-0.20250908182407-97ad5b59a627` -> "reading .../
#     github.com/argoproj/argo-cd/gitops-engine/@v/v0.7.1-0.20250908182407-
#     97ad5b59a627.info: 403 Forbidden, server response: This module version
#     is not available." (`go list -m -versions` lists none of that module). The old separate module github.com/argoproj/
#     gitops-engine cannot stand in: its packages import themselves under the
#     old path, so argo-cd and gitops-engine would see two copies of each type.
#   - v3.3.x: requires github.com/argoproj/gitops-engine v0.7.1-0.20250908182407-
#     97ad5b59a627 (served) but replaces it by ./gitops-engine (not in the
#     zip). Dropping that replace resolves every dependency (`go list -deps
#     ./cmd` passes), but builds the engine as of 2025-09-08, without the 29
#     commits release-3.3 made to its in-tree copy up to v3.3.14 (security
#     fixes among them: secrets hidden in server-side diffs and in
#     last-applied-configuration, #27762, #28989). Not a faithful v3.3.
#   - v3.2.12 requires github.com/argoproj/gitops-engine v0.7.1-0.
#     20260512161450-ff8d2f5207dc, the separate repository's release branch,
#     served, with no replace to a directory: its own go.mod builds as it is.
#     But the proxy's v3.2.12 does not compile as served: "controller/cache/
#     info.go:51:23: undefined: settings.ValidateExternalURL". Its zip is the
#     tag's first commit (1966269f, "Bump version to 3.2.12", 2026-05-12
#     20:52 UTC; the proxy keeps a version as it first saw it); the tag was then
#     moved to 4caf2709, two commits on: "fix(lint): unnecessary nesting"
#     (#27819, the same code in controller/cache/info.go restructured) and
#     "fix: export url validation function" (#27816: util/settings renames
#     validateExternalURL to ValidateExternalURL, 6 lines). The proxy refuses
#     that commit ("v3.2.13-0.20260513014731-4caf2709419b.info: 403
#     Forbidden"), so this script makes #27816's rename in the copy; the zip
#     and the tag's first commit are otherwise the same tree (less the
#     symlinks and the nested module a zip leaves out). v3.2.11 compiles but
#     lacks v3.2.12's security fixes (the annotation link URL validation among
#     them, the very code that failed).
#
# Built as a main module, from a copy of the module zip (with the v3.2.12 fix
# above) and upstream's go.mod and go.sum unchanged (`go install` refuses a module with replace directives;
# upstream's replaces all name module versions). The web UI (ui/dist/app) is
# empty in the zip but for upstream's placeholder file ui/dist/app/gitkeep, which
# keeps the //go:embed valid: no build tag needed): this build
# has no UI, and no argocd-server is run anyway. Version data as upstream's
# Makefile sets it (common.version from VERSION, kubectlVersion from go.mod,
# buildDate the module's time; no gitCommit: the proxy does not say it).
#
# Binary, image and CRDs are cached under ${COALMINE_CACHE:-~/.cache/coalmine}/
# argocd-<version>/; the archive is copied to _out/images/coalmine-argocd.tar,
# and the manifests are written to the directory the last line names:
#   kubectl apply --server-side -f DIR/crds && kubectl apply -f DIR/install.yaml
# (--server-side: the Application CRD is too large for the last-applied
# annotation of a client-side apply).
#
# Cold, the binary takes about half an hour with GOFLAGS=-p=1 on a busy 2-core
# machine (2,274 packages; 29 minutes measured at a load of 4 to 8), the Debian
# base with git, tini and redis-server 5 minutes. The binary is static and
# stripped, 149 MB (every Argo CD program and the CLI; no UI); the image is
# 364 MB, one uncompressed layer (the base 220 MB of it: Python, which every
# base has, and git's Perl). A cached run only copies the archive (1 s).
#
# Environment: ARGOCD_VERSION, COALMINE_CACHE, COALMINE_IMAGES_OUT, GOFLAGS
# (e.g. -p=1 on a busy machine). Run as root (chroot, numeric owners).
set -euo pipefail

# Pinned; see above before a bump (`go list -m -versions github.com/argoproj/argo-cd/v3`).
ARGOCD_VERSION="${ARGOCD_VERSION:-v3.2.12}"
# The Debian packages the image adds to the base (debian-base.sh caches per list).
ARGOCD_DEBIAN_PACKAGES="git tini redis-server"
# UID and GID of upstream's argocd user (its image and its runAsUser).
ARGOCD_UID=999

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "$here/../.." && pwd)"
out_dir="${COALMINE_IMAGES_OUT:-$repo/_out/images}"
module=github.com/argoproj/argo-cd/v3

# step, die, run_logged: one progress line per step; go's output in a log
# shellcheck source-path=SCRIPTDIR source=../lib/progress.sh
source "$here/../lib/progress.sh"

command -v go >/dev/null || die "go is required to build Argo CD"
[[ $(id -u) -eq 0 ]] || die "run as root: the image is assembled in a chroot with numeric owners"

cache="${COALMINE_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/coalmine}"
dir="$cache/argocd-$ARGOCD_VERSION"
bin="$dir/argocd"
image="$dir/coalmine-argocd.tar"
log="$cache/build/argocd-$ARGOCD_VERSION.log"
mkdir -p "$out_dir" "$cache/build" "$dir"
rootfs=""
trap '[[ -z $rootfs ]] || rm -rf "$rootfs"' EXIT

# module_field MODULE@VERSION FIELD: a field of `go mod download -json` (Dir)
# or of `go list -m -json` (Time), which also download; the error otherwise.
module_field() {
  local cmd=(go mod download -json "$1")
  [[ $2 == Dir ]] || cmd=(go list -m -json "$1")
  (cd "$cache/build" && GOFLAGS=-mod=mod "${cmd[@]}") 2>>"$log" |
    python3 -c 'import json, sys; d = json.load(sys.stdin); print(d.get(sys.argv[1]) or sys.exit(d.get("Error") or "no " + sys.argv[1]))' "$2"
}

if [[ ! -x $bin || ! -d $dir/crds ]]; then
  : >"$log"
  step "downloading argo-cd $ARGOCD_VERSION and its dependencies (1/5)"
  src="$(module_field "$module@$ARGOCD_VERSION" Dir)" || die "cannot download $module@$ARGOCD_VERSION (see $log)"
  build_date="$(module_field "$module@$ARGOCD_VERSION" Time)" || die "no time for $module@$ARGOCD_VERSION (see $log)"
  work="$cache/build/argocd-$ARGOCD_VERSION"
  rm -rf "$work" "$dir/crds"
  cp -r "$src" "$work"
  chmod -R u+w "$work"
  # A replace by a directory names a nested module the zip leaves out (v3.3 on).
  dir_replaces="$(cd "$work" && go mod edit -json | python3 -c 'import json, sys
print(" ".join(r["Old"]["Path"] + "=>" + r["New"]["Path"] for r in json.load(sys.stdin).get("Replace") or [] if not r["New"].get("Version")))')"
  [[ -z $dir_replaces ]] ||
    die "$ARGOCD_VERSION replaces by a directory that its module zip leaves out ($dir_replaces): see the header of $0"
  # See above: upstream's own fix for the proxy's v3.2.12, made only where it applies.
  if [[ $ARGOCD_VERSION == v3.2.12 ]]; then
    grep -q '^func validateExternalURL(' "$work/util/settings/settings.go" ||
      die "argo-cd v3.2.12's util/settings changed: review the ValidateExternalURL fix in $0"
    sed -i 's/\bvalidateExternalURL\b/ValidateExternalURL/g' \
      "$work/util/settings/settings.go" "$work/util/settings/settings_test.go"
  fi
  mkdir -p "$dir/crds.tmp"
  cp "$src/manifests/crds/application-crd.yaml" "$src/manifests/crds/appproject-crd.yaml" "$dir/crds.tmp/"
  chmod -R u+w "$dir/crds.tmp"
  mv "$dir/crds.tmp" "$dir/crds"
  (cd "$work" && run_logged "${log%.log}-download.log" env GOFLAGS="${GOFLAGS:+$GOFLAGS }-mod=mod" \
    nice -n 19 go list -deps ./cmd) || die "downloading argo-cd's dependencies failed"
  pkg=github.com/argoproj/argo-cd/v3/common
  kubectl_version="$(awk '$1 == "k8s.io/kubectl" && $2 ~ /^v/ {print $2; exit}' "$work/go.mod")"
  ldflags="-s -w -X $pkg.version=$(cat "$work/VERSION") -X $pkg.buildDate=$build_date"
  ldflags+=" -X $pkg.gitTreeState=clean -X $pkg.gitTag=$ARGOCD_VERSION -X $pkg.kubectlVersion=$kubectl_version"
  step "building argocd $ARGOCD_VERSION from Go modules (2/5; tens of minutes, cached after)"
  (cd "$work" && run_logged "$log" env CGO_ENABLED=0 GOFLAGS="${GOFLAGS:+$GOFLAGS }-mod=mod" \
    nice -n 19 go build -trimpath -ldflags "$ldflags" -o "$bin.tmp" ./cmd) || die "building argocd failed"
  mv "$bin.tmp" "$bin"
  rm -rf "$work"
fi

step "Debian base with $ARGOCD_DEBIAN_PACKAGES (3/5)"
base="$(COALMINE_BASE_PACKAGES="$ARGOCD_DEBIAN_PACKAGES" "$repo/hack/images/debian-base.sh")" ||
  die "the Debian base with $ARGOCD_DEBIAN_PACKAGES failed"

if [[ ! -f $image || $bin -nt $image || $base/../done -nt $image || ${BASH_SOURCE[0]} -nt $image ]]; then
  step "packing coalmine/argocd:$ARGOCD_VERSION (4/5)"
  rootfs="$(mktemp -d)"
  cp -a "$base/." "$rootfs/"
  install -m 0755 "$bin" "$rootfs/usr/local/bin/argocd"
  for name in argocd-application-controller argocd-repo-server; do
    ln -s argocd "$rootfs/usr/local/bin/$name"
  done
  # Upstream's user and home; its image's known_hosts path (the repo-server
  # writes no file there: an argocd-ssh-known-hosts-cm mount replaces it).
  grep -q '^argocd:' "$rootfs/etc/passwd" ||
    printf 'argocd:x:%d:%d:argocd:/home/argocd:/usr/sbin/nologin\n' "$ARGOCD_UID" "$ARGOCD_UID" >>"$rootfs/etc/passwd"
  grep -q '^argocd:' "$rootfs/etc/group" || printf 'argocd:x:%d:\n' "$ARGOCD_UID" >>"$rootfs/etc/group"
  install -d -m 0755 -o "$ARGOCD_UID" -g 0 "$rootfs/home/argocd"
  install -d -m 0755 "$rootfs/app/config/ssh" "$rootfs/app/config/tls" "$rootfs/app/config/gpg/source"
  install -d -m 0700 -o "$ARGOCD_UID" "$rootfs/app/config/gpg/keys"
  : >"$rootfs/app/config/ssh/ssh_known_hosts"
  mkdir -p "$rootfs/etc/ssh"
  ln -sf /app/config/ssh/ssh_known_hosts "$rootfs/etc/ssh/ssh_known_hosts"
  # The smoke test: as the image runs (UID 999, read-only root, a fresh /tmp).
  # shellcheck disable=SC2016  # expanded by the inner shell
  unshare --mount --propagation private -- bash -euc '
    r="$1"; uid="$2"
    mount --bind "$r" "$r" && mount -o remount,bind,ro "$r"
    mount -t tmpfs -o mode=1777 tmpfs "$r/tmp"
    mount -t proc proc "$r/proc"
    run() { chroot --userspec="$uid:$uid" "$r" env -i HOME=/home/argocd PATH=/usr/local/bin:/usr/bin:/bin "$@"; }
    run argocd-application-controller --help >/dev/null
    run argocd-repo-server --help >/dev/null
    run env ARGOCD_BINARY_NAME=argocd-repo-server /usr/local/bin/argocd --help >/dev/null
    run git --version >/dev/null
    run tini --version >/dev/null
    run redis-server --version >/dev/null
  ' smoke "$rootfs" "$ARGOCD_UID" || die "the image's smoke test failed (argocd --help, git, tini, redis-server as UID $ARGOCD_UID)"
  python3 "$repo/hack/images/mkimage.py" --rootfs "$rootfs" \
    --name "coalmine/argocd:$ARGOCD_VERSION" --output "$image.tmp" \
    --entrypoint '["/usr/bin/tini", "--"]' --cmd '["argocd-repo-server"]' \
    --user "$ARGOCD_UID:$ARGOCD_UID" --workdir /home/argocd \
    --env USER=argocd --env HOME=/home/argocd \
    --env PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
    --label "org.opencontainers.image.title=coalmine-argocd" \
    --label "org.opencontainers.image.version=$ARGOCD_VERSION"
  mv "$image.tmp" "$image"
  rm -rf "$rootfs"
  rootfs=""
fi
cp "$image" "$out_dir/coalmine-argocd.tar"
step "image ready: $out_dir/coalmine-argocd.tar ($(du -h "$image" | cut -f1))"

manifests="$cache/argocd-manifests-$ARGOCD_VERSION"
rm -rf "$manifests.tmp"
mkdir -p "$manifests.tmp/crds"
cp "$dir/crds/"*.yaml "$manifests.tmp/crds/"
sed -e "s|@ARGOCD_VERSION@|$ARGOCD_VERSION|g" "$here/manifests/install.yaml" >"$manifests.tmp/install.yaml"
rm -rf "$manifests"
mv "$manifests.tmp" "$manifests"
step "manifests ready (5/5): $manifests"
printf '%s\n' "$manifests"
