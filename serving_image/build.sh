#!/usr/bin/env bash
# Builds the serving image coalmine/serving:<version> offline: no registry, no
# Docker daemon. The ordinary path, for machines with a registry, is the
# Dockerfile beside this script.
#
#   1. wheels: `pip download` on the host of the `serving` extra (cp311,
#      manylinux x86_64), cached by the hash of the requirement list; the
#      project's own wheel is built from the working tree, offline.
#   2. base: the cached Debian 12 rootfs of hack/images/debian-base.sh.
#   3. install: a venv at /opt/coalmine inside a copy of the base, filled by
#      pip run from its wheel inside a chroot, offline (--no-index); bytecode
#      compiled with unchecked hashes, so a read-only root never needs to write.
#   4. user 65532 (nonroot) in /etc/passwd and /etc/group.
#   5. hack/images/mkimage.py -> _out/images/coalmine-serving.tar.
#
# A rebuild whose inputs (sources, requirements, base, scripts) are unchanged
# is skipped. Environment:
#   COALMINE_CACHE        cache root (default ~/.cache/coalmine)
#   COALMINE_IMAGES_OUT   output directory (default _out/images)
#   COALMINE_IMAGE_GZIP   1 to gzip the layer (smaller file, slower import)
#   COALMINE_IMAGE_FORCE  1 to rebuild even when nothing changed
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "$here/.." && pwd)"
cache="${COALMINE_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/coalmine}/images"
out_dir="${COALMINE_IMAGES_OUT:-$repo/_out/images}"
output="$out_dir/coalmine-serving.tar"
gzip_layer="${COALMINE_IMAGE_GZIP:-0}"
# Wheels for the image's interpreter: Debian 12's CPython 3.11, glibc 2.36.
py_version=3.11
glibc_minor=36
platform="manylinux_2_${glibc_minor}_x86_64"
# pip does not widen a manylinux_2_X tag to older glibcs by itself: list them
# all (manylinux2014 is widened to manylinux2010 and manylinux1).
platform_args=()
for ((m = glibc_minor; m >= 17; m--)); do platform_args+=(--platform "manylinux_2_${m}_x86_64"); done
platform_args+=(--platform manylinux2014_x86_64)

step() { printf '==> %s\n' "$*" >&2; }
info() { printf '    %s\n' "$*" >&2; }
die() { printf 'error: %s\n' "$*" >&2; exit 1; }

[[ $(id -u) -eq 0 ]] || die "run as root: the install runs in a chroot and keeps numeric owners"
command -v python3 >/dev/null || die "python3 is required on the host"

# The host's pip settings must not leak in: no extra find-links, no user config.
pip_host() { env -u PIP_FIND_LINKS -u PIP_INDEX_URL -u PIP_EXTRA_INDEX_URL python3 -m pip "$@"; }

# The version and the requirement list, read from pyproject.toml.
read_project() {
  python3 - "$repo/pyproject.toml" <<'PY'
import sys
import tomllib

with open(sys.argv[1], "rb") as f:
    project = tomllib.load(f)["project"]
print(project["version"])
for req in sorted(project["dependencies"] + project["optional-dependencies"]["serving"]):
    print(req)
PY
}
mapfile -t project < <(read_project)
version="${project[0]}"
reqs=("${project[@]:1}")
[[ -n $version && ${#reqs[@]} -gt 0 ]] || die "cannot read version and requirements from pyproject.toml"
name="coalmine/serving:$version"

hash_text() { sha256sum | cut -c1-16; }
# The files of the project wheel, and their content hash.
src_paths=(pyproject.toml operator/coalmine serving_image/coalmine_serving)
for f in README.md LICENSE; do [[ -f $repo/$f ]] && src_paths+=("$f"); done
source_hash() {
  (cd "$repo" && find "${src_paths[@]}" -type f ! -path '*/__pycache__/*' ! -name '*.pyc' \
    ! -path '*.egg-info/*' -print0 | sort -z | xargs -0 sha256sum) | hash_text
}

# --- 1. wheels ----------------------------------------------------------------
wheels_key="$(printf '%s\n' "$py_version" "$platform" "${reqs[@]}" | hash_text)"
wheels="$cache/wheels-$wheels_key"
if [[ -f $wheels/done ]]; then
  step "wheels cached: $wheels ($(find "$wheels" -name '*.whl' | wc -l) files)"
else
  step "downloading wheels for ${#reqs[@]} requirements (cp${py_version/./}, $platform) from PyPI"
  rm -rf "$wheels.tmp"
  mkdir -p "$wheels.tmp"
  # pip (run from its wheel inside the image) and the build backend for the
  # project's own wheel come along, so everything after this step is offline.
  pip_host download --quiet --dest "$wheels.tmp" --only-binary=:all: \
    "${platform_args[@]}" --python-version "$py_version" --implementation cp --abi "cp${py_version/./}" \
    "${reqs[@]}" pip "setuptools>=68" wheel
  find "$wheels.tmp" -name '*.whl' -printf '%f\n' | sort >"$wheels.tmp/done"
  rm -rf "$wheels"
  mv "$wheels.tmp" "$wheels"
  info "$(wc -l <"$wheels/done") wheels, $(du -sh "$wheels" | cut -f1)"
fi

# --- 2. base --------------------------------------------------------------------
base="$("$repo/hack/images/debian-base.sh")"

# Everything that determines the image; unchanged -> nothing to do.
image_key="$(printf '%s\n' "$name" "$gzip_layer" "$wheels_key" "$base" "$(source_hash)" \
  "$(cat "$here/build.sh" "$repo/hack/images/mkimage.py" | hash_text)" | hash_text)"
stamp="$out_dir/.coalmine-serving.key"
if [[ ${COALMINE_IMAGE_FORCE:-0} != 1 && -f $output && -f $stamp && $(cat "$stamp") == "$image_key" ]]; then
  step "image up to date: $output ($(du -h "$output" | cut -f1)); COALMINE_IMAGE_FORCE=1 rebuilds"
  exit 0
fi

# A failed build must not leave the previous image looking current.
rm -f "$output" "$stamp"
work="$out_dir/.work/serving"
rootfs="$work/rootfs"
trap 'rm -rf "$work"; rmdir "$out_dir/.work" 2>/dev/null || true' EXIT
rm -rf "$work"
mkdir -p "$work/src" "$work/dist"

step "building the coalmine wheel $version from the working tree (offline)"
(cd "$repo" && tar -c --exclude=__pycache__ --exclude='*.pyc' --exclude='*.egg-info' \
  "${src_paths[@]}") | tar -x -C "$work/src"
[[ -f $work/src/README.md ]] || printf '# coalmine\n' >"$work/src/README.md"
# Fixed zip timestamps: the same sources give the same wheel.
SOURCE_DATE_EPOCH=315532800 pip_host wheel --quiet --no-deps --no-index --find-links "$wheels" --wheel-dir "$work/dist" "$work/src"
wheel_file="$(find "$work/dist" -name 'coalmine-*.whl' -printf '%f\n')"
[[ -n $wheel_file ]] || die "no coalmine wheel was built"
info "$wheel_file"

# --- 3. install -----------------------------------------------------------------
step "copying the Debian base ($(du -sh "$base" | cut -f1))"
cp -a "$base" "$rootfs"
mkdir -p "$rootfs/wheels"
cp "$wheels"/*.whl "$work/dist/$wheel_file" "$rootfs/wheels/"

clean_env=(env -i PATH=/opt/coalmine/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
  LANG=C.UTF-8 PYTHONDONTWRITEBYTECODE=1)
in_root() { "${clean_env[@]}" HOME=/root chroot "$rootfs" "$@"; }
# As the image runs: UID 65532, the root read-only, a fresh /tmp, /proc mounted
# (in a private mount namespace, so nothing is left mounted on the host).
as_image() {
  # shellcheck disable=SC2016  # expanded by the inner shell
  unshare --mount --propagation private -- bash -euc '
    r="$1"; shift
    mount --bind "$r" "$r" && mount -o remount,bind,ro "$r"
    mount -t tmpfs -o mode=1777 tmpfs "$r/tmp"
    mount -t tmpfs -o mode=1777 tmpfs "$r/dev/shm"
    mount -t proc proc "$r/proc"
    exec "$@"' _ "$rootfs" "${clean_env[@]}" HOME=/tmp chroot --userspec=65532:65532 "$rootfs" "$@"
}
step "installing coalmine[serving] into /opt/coalmine (offline, in a chroot)"
in_root /usr/bin/python3 -m venv --without-pip /opt/coalmine
pip_wheel="$(find "$rootfs/wheels" -name 'pip-*.whl' -printf '%f\n' | head -n1)"
in_root /opt/coalmine/bin/python3 "/wheels/$pip_wheel/pip" install --quiet --no-index \
  --find-links /wheels --no-cache-dir --no-compile --disable-pip-version-check \
  "coalmine[serving]==$version"
in_root /opt/coalmine/bin/python3 -c 'import importlib.metadata as m
for d in sorted(m.distributions(), key=lambda d: d.metadata["Name"].lower()):
    print("    " + d.metadata["Name"] + "==" + d.version)' >&2

step "removing the test suites of the installed packages"
site="$rootfs/opt/coalmine/lib/python$py_version/site-packages"
info "$(find "$site" -type d -name tests -prune -exec du -sc {} + | awk 'END { printf "%d MB", $1 / 1024 }')"
find "$site" -type d -name tests -prune -exec rm -rf {} +

step "compiling bytecode (unchecked-hash: valid after mtimes are reset, never rewritten)"
in_root nice -n 10 /opt/coalmine/bin/python3 -m compileall -q -j 2 \
  --invalidation-mode unchecked-hash /opt/coalmine >/dev/null \
  || info "some files did not compile (templates or other-version sources; never imported)"

step "cleaning up: wheels, pip caches"
rm -rf "$rootfs/wheels" "$rootfs/root/.cache"

# --- 4. user --------------------------------------------------------------------
grep -q '^nonroot:' "$rootfs/etc/passwd" \
  || printf 'nonroot:x:65532:65532:nonroot:/tmp:/usr/sbin/nologin\n' >>"$rootfs/etc/passwd"
grep -q '^nonroot:' "$rootfs/etc/group" || printf 'nonroot:x:65532:\n' >>"$rootfs/etc/group"

step "smoke test: as UID 65532 on a read-only root"
as_image /opt/coalmine/bin/python3 -c \
  'import numpy, sklearn, scipy, orjson, httptools, uvloop, prometheus_client, skops, onnxruntime
print(f"    numpy {numpy.__version__}, scikit-learn {sklearn.__version__}, onnxruntime {onnxruntime.__version__}")' >&2
if in_root /opt/coalmine/bin/python3 -c 'import importlib.util, sys
sys.exit(importlib.util.find_spec("coalmine_serving.main") is None)'; then
  as_image /opt/coalmine/bin/coalmine-serve --help >/dev/null || die "coalmine-serve --help fails in the image"
  info "coalmine-serve --help: ok"
else
  info "coalmine_serving.main does not exist yet: skipped coalmine-serve --help"
fi

# --- 5. pack --------------------------------------------------------------------
step "packing $name"
mkimage_args=()
[[ $gzip_layer == 1 ]] && mkimage_args+=(--gzip)
python3 "$repo/hack/images/mkimage.py" --rootfs "$rootfs" --name "$name" --output "$output" \
  --entrypoint '["coalmine-serve"]' --user 65532:65532 --workdir /tmp --expose 8080 \
  --env PATH=/opt/coalmine/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
  --env PYTHONDONTWRITEBYTECODE=1 --env PYTHONUNBUFFERED=1 --env HOME=/tmp \
  --label org.opencontainers.image.title=coalmine-serving \
  --label "org.opencontainers.image.version=$version" \
  "${mkimage_args[@]}"
rootfs_mb="$(du -sm "$rootfs" | cut -f1)"
printf '%s\n' "$image_key" >"$stamp"
step "image ready: $output"
info "archive $(du -h "$output" | cut -f1), rootfs ${rootfs_mb} MB on disk"
