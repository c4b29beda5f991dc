#!/usr/bin/env bash
# Copies the generated CRDs (crds/, from `make crds`) into the chart
# (charts/coalmine/files/crds/), which renders them as templates: Helm can only
# read files inside the chart. crds/ is the one source; never edit the copy.
# tests/integration/test_chart.py fails when the two differ.
set -euo pipefail

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
dest="$repo/charts/coalmine/files/crds"
shopt -s nullglob
sources=("$repo"/crds/*.yaml)
[[ ${#sources[@]} -gt 0 ]] || { printf 'error: no CRDs in %s/crds (run make crds)\n' "$repo" >&2; exit 1; }
mkdir -p "$dest"
rm -f "$dest"/*.yaml
cp "${sources[@]}" "$dest/"
printf '==> %d CRDs copied to %s\n' "${#sources[@]}" "${dest#"$repo"/}" >&2
