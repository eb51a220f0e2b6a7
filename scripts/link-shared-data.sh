#!/usr/bin/env bash
# Links the real datasets of a developer checkout (../shared/data/*) into data/,
# where the example sessions look for them. The links are git-ignored; data are
# never copied into the repository. Does nothing when ../shared is absent.
set -euo pipefail
cd "$(dirname "$0")/.."
shared="${PATCHBENCH_SHARED:-../shared}/data"
[ -d "$shared" ] || { echo "no $shared: skipping the real-data links"; exit 0; }
shared="$(cd "$shared" && pwd)"
for name in m1_patchseq digits mnist5k; do
    if [ -d "$shared/$name" ] && [ ! -e "data/$name" ]; then
        ln -s "$shared/$name" "data/$name"
        echo "linked data/$name -> $shared/$name"
    fi
done
