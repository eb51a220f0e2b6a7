#!/usr/bin/env bash
# Writes stratified subsets of MNIST-5k for the data-size experiment of issue 16
# (README, "Seventh round"): data/mnist5k_subsets/mnist<N>.csv holds the first
# N/10 images of each digit of data/mnist5k/mnist5k.csv, in file order, with the
# same columns. The folder is git-ignored; run scripts/link-shared-data.sh first.
set -euo pipefail
cd "$(dirname "$0")/.."
source=data/mnist5k/mnist5k.csv
if [ ! -f "$source" ]; then
  echo "error: $source not found; run scripts/link-shared-data.sh first" >&2
  exit 1
fi
mkdir -p data/mnist5k_subsets
for n in 1250 2500; do
  per_digit=$((n / 10))
  out=data/mnist5k_subsets/mnist$n.csv
  awk -F, -v keep="$per_digit" 'NR == 1 || seen[$2]++ < keep' "$source" > "$out.tmp"
  mv "$out.tmp" "$out"
  echo "$out: $(($(wc -l < "$out") - 1)) images"
done
