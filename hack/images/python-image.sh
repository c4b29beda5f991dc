# shellcheck shell=bash
# Shared steps of the offline Python images (serving_image/build.sh,
# operator_image/build.sh): no registry, no Docker daemon. Source it, then call
# the steps in order:
#
#   pyimage_init EXTRA NAME ARCHIVE  the project's version and requirements
#                                    (dependencies + the extra), paths, checks
#   pyimage_wheels                   `pip download` of the requirement list
#                                    (cp311, manylinux x86_64), cached by its hash
#   pyimage_base                     the cached Debian 12 rootfs (debian-base.sh)
#   pyimage_up_to_date FILE...       takes the build lock; true when the image's
#                                    inputs (sources, wheels, base, FILE... and this
#                                    library) are unchanged
#   pyimage_prepare                  work dir, cleanup trap, the project wheel
#   pyimage_install                  a venv at /opt/coalmine in a copy of the base,
#                                    filled offline by pip in a chroot; test suites
#                                    removed, bytecode compiled with unchecked hashes,
#                                    wheels and caches removed, user 65532 added
#   as_image CMD...                  run CMD as the image runs: UID 65532, the root
#                                    read-only, a fresh /tmp
#   pyimage_pack MKIMAGE_ARGS...     hack/images/mkimage.py with the common config
#                                    (user, workdir, PATH, HOME, labels) and the stamp
#
# Environment:
#   COALMINE_CACHE        cache root (default ~/.cache/coalmine)
#   COALMINE_IMAGES_OUT   output directory (default _out/images)
#   COALMINE_IMAGE_GZIP   1 to gzip the layer (smaller file, slower import)
#   COALMINE_IMAGE_FORCE  1 to rebuild even when nothing changed

# step, info, die, run_logged: one progress line per step, with the time elapsed
# shellcheck source=../lib/progress.sh
source "$(dirname "${BASH_SOURCE[0]}")/../lib/progress.sh"

pyimage_lib="${BASH_SOURCE[0]}"
repo="$(cd "$(dirname "$pyimage_lib")/../.." && pwd)"
cache="${COALMINE_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/coalmine}/images"
out_dir="${COALMINE_IMAGES_OUT:-$repo/_out/images}"
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
clean_env=(env -i PATH=/opt/coalmine/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
  LANG=C.UTF-8 PYTHONDONTWRITEBYTECODE=1)

# The host's pip settings must not leak in: no extra find-links, no user config.
pip_host() { env -u PIP_FIND_LINKS -u PIP_INDEX_URL -u PIP_EXTRA_INDEX_URL python3 -m pip "$@"; }
hash_text() { sha256sum | cut -c1-16; }

# pyimage_init EXTRA IMAGE ARCHIVE: e.g. serving coalmine/serving coalmine-serving.
# Sets extra, version, reqs, name, archive, output, stamp, src_paths.
pyimage_init() {
  extra="$1"
  archive="$3"
  output="$out_dir/$archive.tar"
  stamp="$out_dir/.$archive.key"
  [[ $(id -u) -eq 0 ]] || die "run as root: the install runs in a chroot and keeps numeric owners"
  command -v python3 >/dev/null || die "python3 is required on the host"
  local project
  mapfile -t project < <(pyimage_read_project "$extra")
  version="${project[0]}"
  reqs=("${project[@]:1}")
  [[ -n $version && ${#reqs[@]} -gt 0 ]] || die "cannot read version and requirements from pyproject.toml"
  name="$2:$version"
  # The files of the project wheel (both packages: one wheel for every image).
  src_paths=(pyproject.toml operator/coalmine serving_image/coalmine_serving)
  local f
  for f in README.md LICENSE; do [[ -f $repo/$f ]] && src_paths+=("$f"); done
  return 0
}

# The version and the requirement list (dependencies + EXTRA), from pyproject.toml.
pyimage_read_project() {
  python3 - "$repo/pyproject.toml" "$1" <<'PY'
import sys
import tomllib

with open(sys.argv[1], "rb") as f:
    project = tomllib.load(f)["project"]
print(project["version"])
for req in sorted(project["dependencies"] + project["optional-dependencies"][sys.argv[2]]):
    print(req)
PY
}

# The content hash of the files of the project wheel.
pyimage_source_hash() {
  (cd "$repo" && find "${src_paths[@]}" -type f ! -path '*/__pycache__/*' ! -name '*.pyc' \
    ! -path '*.egg-info/*' -print0 | sort -z | xargs -0 sha256sum) | hash_text
}

# Sets wheels_key, wheels.
pyimage_wheels() {
  wheels_key="$(printf '%s\n' "$py_version" "$platform" "${reqs[@]}" | hash_text)"
  wheels="$cache/wheels-$wheels_key"
  if [[ -f $wheels/done ]]; then
    step "wheels cached: $wheels ($(find "$wheels" -name '*.whl' | wc -l) files)"
    return 0
  fi
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
}

# Sets base.
pyimage_base() {
  base="$("$repo/hack/images/debian-base.sh")"
}

# One build of an image at a time: parallel test sessions share the work
# directory. The lock is held until the script exits.
pyimage_lock() {
  mkdir -p "$out_dir"
  exec {lock_fd}>"$out_dir/.$archive.lock"
  if ! flock -n "$lock_fd"; then
    step "another build of $archive is running: waiting for it"
    flock "$lock_fd"
  fi
}

# pyimage_up_to_date FILE...: everything that determines the image, against the
# stamp of the last build (under the build lock). Sets image_key.
pyimage_up_to_date() {
  pyimage_lock
  image_key="$(printf '%s\n' "$name" "$gzip_layer" "$wheels_key" "$base" "$(pyimage_source_hash)" \
    "$(cat "$@" "$pyimage_lib" "$repo/hack/images/mkimage.py" | hash_text)" | hash_text)"
  if [[ ${COALMINE_IMAGE_FORCE:-0} != 1 && -f $output && -f $stamp && $(cat "$stamp") == "$image_key" ]]; then
    step "image up to date: $output ($(du -h "$output" | cut -f1)); COALMINE_IMAGE_FORCE=1 rebuilds"
    return 0
  fi
  return 1
}

# Sets work, rootfs, wheel_file; removes the old image; builds the project wheel.
pyimage_prepare() {
  # A failed build must not leave the previous image looking current.
  rm -f "$output" "$stamp"
  work="$out_dir/.work/${archive#coalmine-}"
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
}

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

pyimage_install() {
  step "copying the Debian base ($(du -sh "$base" | cut -f1))"
  cp -a "$base" "$rootfs"
  mkdir -p "$rootfs/wheels"
  cp "$wheels"/*.whl "$work/dist/$wheel_file" "$rootfs/wheels/"

  step "installing coalmine[$extra] into /opt/coalmine (offline, in a chroot)"
  in_root /usr/bin/python3 -m venv --without-pip /opt/coalmine
  local pip_wheel
  pip_wheel="$(find "$rootfs/wheels" -name 'pip-*.whl' -printf '%f\n' | head -n1)"
  in_root /opt/coalmine/bin/python3 "/wheels/$pip_wheel/pip" install --quiet --no-index \
    --find-links /wheels --no-cache-dir --no-compile --disable-pip-version-check \
    "coalmine[$extra]==$version"
  in_root /opt/coalmine/bin/python3 -c 'import importlib.metadata as m
for d in sorted(m.distributions(), key=lambda d: d.metadata["Name"].lower()):
    print("    " + d.metadata["Name"] + "==" + d.version)' >&2

  step "removing the test suites of the installed packages"
  local site="$rootfs/opt/coalmine/lib/python$py_version/site-packages"
  info "$(find "$site" -type d -name tests -prune -exec du -sc {} + | awk 'END { printf "%d MB", $1 / 1024 }')"
  find "$site" -type d -name tests -prune -exec rm -rf {} +

  step "compiling bytecode (unchecked-hash: valid after mtimes are reset, never rewritten)"
  in_root nice -n 10 /opt/coalmine/bin/python3 -m compileall -q -j 2 \
    --invalidation-mode unchecked-hash /opt/coalmine >/dev/null \
    || info "some files did not compile (templates or other-version sources; never imported)"

  step "cleaning up: wheels, pip caches"
  rm -rf "$rootfs/wheels" "$rootfs/root/.cache"

  grep -q '^nonroot:' "$rootfs/etc/passwd" \
    || printf 'nonroot:x:65532:65532:nonroot:/tmp:/usr/sbin/nologin\n' >>"$rootfs/etc/passwd"
  grep -q '^nonroot:' "$rootfs/etc/group" || printf 'nonroot:x:65532:\n' >>"$rootfs/etc/group"
}

# pyimage_pack TITLE MKIMAGE_ARGS...: entrypoint, cmd, expose come from the caller.
pyimage_pack() {
  local title="$1"
  shift
  step "packing $name"
  local mkimage_args=()
  [[ $gzip_layer == 1 ]] && mkimage_args+=(--gzip)
  python3 "$repo/hack/images/mkimage.py" --rootfs "$rootfs" --name "$name" --output "$output" \
    --user 65532:65532 --workdir /tmp \
    --env PATH=/opt/coalmine/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
    --env PYTHONDONTWRITEBYTECODE=1 --env PYTHONUNBUFFERED=1 --env HOME=/tmp \
    --label "org.opencontainers.image.title=$title" \
    --label "org.opencontainers.image.version=$version" \
    "$@" "${mkimage_args[@]}"
  local rootfs_mb
  rootfs_mb="$(du -sm "$rootfs" | cut -f1)"
  printf '%s\n' "$image_key" >"$stamp"
  step "image ready: $output"
  info "archive $(du -h "$output" | cut -f1), rootfs ${rootfs_mb} MB on disk"
}
