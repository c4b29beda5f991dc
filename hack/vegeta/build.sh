#!/usr/bin/env bash
# Builds vegeta, the open-loop HTTP load generator of benchmarks/serving/openloop.py
# (issue 15): requests leave at a fixed rate whether or not earlier ones were
# answered, so a server's queueing shows in the latencies instead of slowing the
# client down as a closed-loop tool (wrk) does. Debian has no package of it, so it
# is built from the Go module proxy, static, and cached under
# ${COALMINE_CACHE:-~/.cache/coalmine}/vegeta-<version>/. The last line printed is
# the binary's path. A cached run prints it at once.
#
# Environment: VEGETA_VERSION, COALMINE_CACHE, GOFLAGS (e.g. -p=1 on a busy machine).
set -euo pipefail

VEGETA_VERSION="${VEGETA_VERSION:-v12.13.0}"
module="github.com/tsenart/vegeta/v12"

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# step, die, run_logged: one progress line per step; go's output in a log
# shellcheck source-path=SCRIPTDIR source=../lib/progress.sh
source "$here/../lib/progress.sh"

command -v go >/dev/null || die "go is required to build vegeta"

cache="${COALMINE_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/coalmine}"
dir="$cache/vegeta-$VEGETA_VERSION"
bin="$dir/vegeta"
log="$cache/build/vegeta-$VEGETA_VERSION.log"
if [[ ! -x $bin ]]; then
  mkdir -p "$dir" "$cache/build"
  step "building vegeta $VEGETA_VERSION from the Go module proxy (1/1; a minute, cached after)"
  # `go install module@version` builds the published module with its own go.mod
  # and go.sum, outside any main module; GOBIN puts the binary in the cache.
  run_logged "$log" env CGO_ENABLED=0 GOBIN="$dir" nice -n 19 \
    go install -trimpath -ldflags "-s -w" "$module@$VEGETA_VERSION" || die "building vegeta failed"
fi
printf '%s\n' "$bin"
