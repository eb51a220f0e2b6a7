#!/usr/bin/env bash
# Installs what building and testing patchbench needs on a fresh machine:
# a Rust toolchain with rustfmt and clippy. Everything else comes from crates.io.
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
