#!/usr/bin/env bash
# Installs what building the component needs, only where it is missing:
# the wasm32-wasip2 Rust target, and clang/llvm-ar/wasi-libc headers for the
# bundled SQLite. Safe to run repeatedly.
set -euo pipefail

need_apt=()
command -v clang-19 >/dev/null 2>&1 || need_apt+=(clang-19)
command -v llvm-ar-19 >/dev/null 2>&1 || need_apt+=(llvm-19)
[ -f /usr/include/wasm32-wasi/stdio.h ] || need_apt+=(wasi-libc)
if [ ${#need_apt[@]} -gt 0 ]; then
  echo "setup: installing Debian packages: ${need_apt[*]}" >&2
  sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${need_apt[@]}" >/dev/null
fi

if ! rustup target list --installed | grep -qx wasm32-wasip2; then
  echo "setup: adding the wasm32-wasip2 Rust target" >&2
  rustup target add wasm32-wasip2
fi
