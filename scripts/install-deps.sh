#!/usr/bin/env bash
# Installs what building and testing patchbench needs on a fresh machine:
# a Rust toolchain with rustfmt and clippy, and tmux for the end-to-end test
# of the workbench (tests/tui_tmux.rs). Everything else comes from crates.io.
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
if ! command -v tmux >/dev/null 2>&1; then
    if command -v apt-get >/dev/null 2>&1; then
        sudo_cmd=""
        if [ "$(id -u)" -ne 0 ] && command -v sudo >/dev/null 2>&1; then
            sudo_cmd="sudo"
        fi
        $sudo_cmd apt-get update -qq && $sudo_cmd apt-get install -y -qq tmux
    else
        echo "tmux not found and apt-get unavailable: the tmux test will be skipped" >&2
    fi
fi
