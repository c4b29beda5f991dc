#!/usr/bin/env bash
# Builds the serving image coalmine/serving:<version> offline: no registry, no
# Docker daemon. The ordinary path, for machines with a registry, is the
# Dockerfile beside this script. The steps are shared with the operator image
# (hack/images/python-image.sh):
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
# shellcheck source=hack/images/python-image.sh
source "$here/../hack/images/python-image.sh"

pyimage_init serving coalmine/serving coalmine-serving
pyimage_wheels
pyimage_base
pyimage_up_to_date "$here/build.sh" && exit 0
pyimage_prepare
pyimage_install

step "smoke test: as UID 65532 on a read-only root"
as_image /opt/coalmine/bin/python3 -c \
  'import numpy, sklearn, scipy, orjson, httptools, uvloop, prometheus_client, skops, onnxruntime, grpc
print(f"    numpy {numpy.__version__}, scikit-learn {sklearn.__version__}, onnxruntime {onnxruntime.__version__}")' >&2
if in_root /opt/coalmine/bin/python3 -c 'import importlib.util, sys
sys.exit(importlib.util.find_spec("coalmine_serving.main") is None)'; then
  as_image /opt/coalmine/bin/coalmine-serve --help >/dev/null || die "coalmine-serve --help fails in the image"
  info "coalmine-serve --help: ok"
else
  info "coalmine_serving.main does not exist yet: skipped coalmine-serve --help"
fi

pyimage_pack coalmine-serving --entrypoint '["coalmine-serve"]' --expose 8080 --expose 8081
