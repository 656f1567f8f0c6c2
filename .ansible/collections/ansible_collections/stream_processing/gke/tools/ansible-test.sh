#!/usr/bin/env bash
# Run ansible-test from a copy of the collection under .../ansible_collections/stream_processing/gke,
# which ansible-test requires (a symlink is not accepted), with its get-pip download served offline.
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
cache_dir=${SPG_CACHE_DIR:-$HOME/.cache/stream-processing-gke}
mkdir -p "$cache_dir/ansible-test"
# A private copy per run, so concurrent runs never see each other's files.
run_dir=$(mktemp -d "$cache_dir/ansible-test/run.XXXXXX")
trap 'rm -rf "$run_dir"' EXIT
copy="$run_dir/ansible_collections/stream_processing/gke"
mkdir -p "$copy"

"$repo/tools/seed-get-pip.sh"
(cd "$repo" && git ls-files -z --cached --others --exclude-standard | while IFS= read -r -d '' f; do [[ -e "$f" ]] && printf '%s\0' "$f"; done |
  tar --null -T - -cf -) | tar -xf - -C "$copy"

cd "$copy"
export PATH="$repo/.venv/bin:$PATH"
status=0
ansible-test "$@" || status=$?
if [[ -d tests/output ]]; then
  mkdir -p "$repo/tests/output"
  cp -a tests/output/. "$repo/tests/output/"
fi
exit "$status"
