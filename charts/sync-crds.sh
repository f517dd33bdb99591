#!/usr/bin/env bash
# Copies crds/*.yaml (the one source of truth) into the chart:
#   - files holding only CustomResourceDefinitions -> charts/loopline/crds/   (Helm installs them first, never upgrades)
#   - any other manifest (the ModelVersion MutatingAdmissionPolicy) -> charts/loopline/files/, rendered by a template
#     so it is upgraded and removed with the release.
#   charts/sync-crds.sh          copy
#   charts/sync-crds.sh --check  exit 1 and name every file that differs (what charts/test/lint.test.ts asserts)
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
SRC="$ROOT/crds"
CHART="$ROOT/charts/loopline"

# A file belongs in the chart's crds/ when every document in it is a CustomResourceDefinition.
destination() {
  if grep -E '^kind:' "$1" | grep -qv '^kind: CustomResourceDefinition$'; then echo files; else echo crds; fi
}

if [[ "${1:-}" == "--check" ]]; then
  status=0
  for f in "$SRC"/*.yaml; do
    rel="$(destination "$f")/$(basename "$f")"
    if ! cmp -s "$f" "$CHART/$rel"; then echo "differs: charts/loopline/$rel"; status=1; fi
  done
  for f in "$CHART"/crds/*.yaml; do
    [[ -e "$SRC/$(basename "$f")" ]] || { echo "not in crds/: charts/loopline/crds/$(basename "$f")"; status=1; }
  done
  [[ $status == 0 ]] && echo "chart copies match crds/"
  exit $status
fi

mkdir -p "$CHART/crds" "$CHART/files"
rm -f "$CHART"/crds/*.yaml
for f in "$SRC"/*.yaml; do
  rel="$(destination "$f")/$(basename "$f")"
  cp "$f" "$CHART/$rel"
  echo "crds/$(basename "$f") -> charts/loopline/$rel"
done
