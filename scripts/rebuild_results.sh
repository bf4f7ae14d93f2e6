#!/usr/bin/env bash
# Rebuild every committed report under results/ from its runs.csv with the current report code
# (tables, paired differences, figures), e.g. after the report changes:
#   bash scripts/rebuild_results.sh
# Each results/<grid>/reference names the grid's reference method (default: baseline).
set -euo pipefail
cd "$(dirname "$0")/.."
for csv in results/*/runs.csv; do
  grid=$(dirname "$csv")
  reference=$(cat "$grid/reference" 2>/dev/null || echo baseline)
  tmp=$(mktemp -d)
  genseg report runs_csv="$csv" out="$tmp" reference="$reference" > /dev/null
  cp "$tmp"/runs.csv "$tmp"/summary.md "$tmp"/paired.md "$tmp"/paired_seeds.csv "$grid"/
  cp "$tmp"/*.png "$grid"/ 2>/dev/null || true
  rm -rf "$tmp"
  echo "rebuilt $grid (reference $reference)"
done
