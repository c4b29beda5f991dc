#!/usr/bin/env bash
# Imports image archives (docker-archive or OCI tar) into the local cluster's
# containerd, where pods with imagePullPolicy IfNotPresent/Never find them.
source "$(dirname "$0")/lib.sh"
(($#)) || die "usage: $0 IMAGE.tar [IMAGE.tar ...]"
pid_of containerd >/dev/null || die "the local cluster is not running (make cluster-up)"
for archive in "$@"; do
  step "loading $archive"
  ctr_k8s images import "$archive"
done
