#!/usr/bin/env bash
# Mints a user of the local cluster: a client certificate signed by the cluster's CA
# (CN = the user name, one O per group, as Kubernetes reads them) and a kubeconfig for
# it; prints the kubeconfig's path. The user may do nothing until RBAC grants it.
# Usage: user.sh NAME [GROUP ...]   (minting a name again replaces its groups)
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/pki-lib.sh"

[[ $# -ge 1 && -n "$1" ]] || die "usage: $0 NAME [GROUP ...]"
NAME="$1"
shift
GROUPS_CSV="$(IFS=,; echo "$*")"
[[ -f "$STATE_DIR/pki/ca.key" ]] || die "no cluster CA in $STATE_DIR/pki: run make cluster-up first"
FILE="user-$(printf '%s' "$NAME" | tr -c 'A-Za-z0-9._-' '_' | head -c 64)"

mkdir -p "$STATE_DIR/users"
cd "$STATE_DIR/pki"
rm -f "$FILE.crt" "$FILE.key"
cert "$FILE" "$NAME" "$GROUPS_CSV"
OUT="$STATE_DIR/users/${FILE#user-}.kubeconfig"
kubeconfig "$FILE" "$OUT"
echo "$OUT"
