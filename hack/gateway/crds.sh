#!/usr/bin/env bash
# Prints the directory of the Gateway API standard-channel CRDs, taken from the
# sigs.k8s.io/gateway-api Go module (no release download):
#   kubectl apply --server-side -f "$(hack/gateway/crds.sh)"
# The version matches the one the tested Traefik is built against.
set -euo pipefail
GATEWAY_API_VERSION="${GATEWAY_API_VERSION:-v1.6.1}"
command -v go >/dev/null || { echo "error: go is required to fetch the Gateway API CRDs" >&2; exit 1; }
dir="$(cd /tmp && go mod download -json "sigs.k8s.io/gateway-api@$GATEWAY_API_VERSION" |
  python3 -c 'import json, sys; print(json.load(sys.stdin)["Dir"])')"
printf '%s\n' "$dir/config/crd/standard"
