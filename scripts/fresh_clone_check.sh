#!/usr/bin/env bash
# Prove the two README commands on a fresh clone: clone HEAD into a temporary directory (with
# ../shared beside it, as CI has it), then run `make test` and `make demo` there.
# Usage: scripts/fresh_clone_check.sh [test|demo|both]   (default both)
set -euo pipefail
what=${1:-both}
repo=$(git -C "$(dirname "$0")/.." rev-parse --show-toplevel)
tmp=$(mktemp -d "${TMPDIR:-/tmp}/sense-fresh.XXXXXX")
echo "fresh clone in $tmp"
git clone --quiet "$repo" "$tmp/sense"
[ -d "$repo/../shared" ] && ln -s "$(cd "$repo/../shared" && pwd)" "$tmp/shared"
cd "$tmp/sense"
case $what in
  test) make test ;;
  demo) make demo ;;
  both) make test && make demo ;;
  *) echo "usage: $0 [test|demo|both]" >&2; exit 2 ;;
esac
echo "fresh clone check ($what) passed in $tmp"
