#!/usr/bin/env bash
# Installs what building and testing patchbench needs on a fresh machine:
# a Rust toolchain with rustfmt and clippy, the HDF5 C library and pkg-config
# (the .h5ad reader links Debian's libhdf5-dev), tmux for the end-to-end test
# of the workbench (tests/tui_tmux.rs), and Python's anndata for the .h5ad
# round-trip test (tests/anndata_output.rs skips without it). Everything else
# comes from crates.io.
set -euo pipefail
if ! command -v cargo >/dev/null 2>&1; then
    if ! command -v curl >/dev/null 2>&1; then
        echo "cargo not found: install Rust from your distribution or with rustup" >&2
        exit 1
    fi
    curl --proto '=https' --tlsv1.2 -sSf https://sh.rustup.rs | sh -s -- -y --profile minimal
    # shellcheck disable=SC1091
    source "$HOME/.cargo/env"
fi
if command -v rustup >/dev/null 2>&1; then
    rustup component add rustfmt clippy >/dev/null 2>&1 || true
fi
sudo_cmd=""
if [ "$(id -u)" -ne 0 ] && command -v sudo >/dev/null 2>&1; then
    sudo_cmd="sudo"
fi
missing=()
command -v tmux >/dev/null 2>&1 || missing+=(tmux)
command -v pkg-config >/dev/null 2>&1 || missing+=(pkg-config)
if ! pkg-config --exists hdf5 2>/dev/null; then
    missing+=(libhdf5-dev)
fi
if [ "${#missing[@]}" -gt 0 ]; then
    if command -v apt-get >/dev/null 2>&1; then
        $sudo_cmd apt-get update -qq && $sudo_cmd apt-get install -y -qq "${missing[@]}"
    else
        echo "missing ${missing[*]} and apt-get unavailable: install them by hand" >&2
    fi
fi
if command -v python3 >/dev/null 2>&1 && ! python3 -c "import anndata" >/dev/null 2>&1; then
    python3 -m pip install -q anndata || echo "pip could not install anndata: the .h5ad round-trip test will be skipped" >&2
fi
