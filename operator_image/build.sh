#!/usr/bin/env bash
# Builds the operator image coalmine/operator:<version> offline: no registry,
# no Docker daemon, the same steps as the serving image
# (hack/images/python-image.sh) with the `operator` extra (kopf, kubernetes).
# The ordinary path, for machines with a registry, is the Dockerfile beside
# this script.
#
#   1. wheels of the `operator` extra, downloaded on the host and cached;
#   2. the cached Debian 12 base; 3. a venv at /opt/coalmine filled offline in a
#   chroot, bytecode compiled with unchecked hashes (read-only root friendly);
#   kubernetes.aio (an unused asyncio copy of the client) removed;
#   4. user 65532; 5. a smoke test as UID 65532 on a read-only root;
#   6. _out/images/coalmine-operator.tar, ENTRYPOINT ["coalmine"], CMD ["operator"].
#
# Environment: COALMINE_CACHE, COALMINE_IMAGES_OUT, COALMINE_IMAGE_GZIP,
# COALMINE_IMAGE_FORCE (see hack/images/python-image.sh).
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=hack/images/python-image.sh
source "$here/../hack/images/python-image.sh"

pyimage_init operator coalmine/operator coalmine-operator
pyimage_wheels
pyimage_base
pyimage_up_to_date "$here/build.sh" && exit 0
pyimage_prepare
pyimage_install

# kubernetes >= 35 ships an asyncio twin of its whole client (kubernetes.aio,
# about 70 MB with bytecode). Nothing here imports it: the operator uses the
# synchronous client, kopf its own aiohttp one. The smoke test below proves it.
step "removing kubernetes.aio (unused asyncio copy of the client)"
rm -rf "$rootfs/opt/coalmine/lib/python$py_version/site-packages/kubernetes/aio"

step "smoke test: as UID 65532 on a read-only root"
as_image /opt/coalmine/bin/python3 -c 'import importlib.metadata as m, coalmine.handlers
print("    kopf", m.version("kopf") + ", kubernetes", m.version("kubernetes"))' >&2
as_image /opt/coalmine/bin/coalmine operator --help >/dev/null || die "coalmine operator --help fails in the image"
info "coalmine operator --help: ok"

# Port 8080: kopf's health endpoint (`--liveness http://0.0.0.0:8080/healthz`).
pyimage_pack coalmine-operator --entrypoint '["coalmine"]' --cmd '["operator"]' --expose 8080
