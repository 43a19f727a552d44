#!/usr/bin/env bash
# Installs the tools the polyglot conformance tests need, where missing:
#   - componentize-py (PyPI), in a venv under ~/.cache (shared by checkouts)
#   - componentize-js and jco (npm), by `npm ci` from polyglot/package-lock.json
#   - wac-cli (crates.io), by `cargo install`
# Node.js >= 20.19 and Python >= 3.10 with venv must already be there.
# Safe to re-run: each step is skipped when its exact version is present.
#
#   polyglot/setup.sh          install what is missing (make test runs this)
#   polyglot/setup.sh --check  install nothing; fail, naming what is missing
#
# Any failure is fatal and says what to do: the polyglot tests never skip.
set -euo pipefail

HERE="$(cd "$(dirname "$0")" && pwd)"
# shellcheck source=versions.sh
source "$HERE/versions.sh"

check_only=0
[ "${1:-}" = "--check" ] && check_only=1

die() {
  echo "polyglot setup: $*" >&2
  exit 1
}
# `missing <what>`: fail in --check mode, else announce the install.
missing() {
  if [ "$check_only" = 1 ]; then
    die "not installed: $1; run \`bash polyglot/setup.sh\` (\`make test\` does)"
  fi
  echo "polyglot setup: installing $1" >&2
}

# Node.js: componentize-js and jco need ^20.19 || >=22.12.
command -v node >/dev/null || die "node is not installed; install Node.js >= 20.19"
node -e '
  const [maj, min] = process.versions.node.split(".").map(Number);
  process.exit((maj === 20 && min >= 19) || (maj === 22 && min >= 12) || maj > 22 ? 0 : 1);
' || die "node $(node --version) is too old; componentize-js and jco need ^20.19 or >= 22.12"
command -v npm >/dev/null || die "npm is not installed"

# componentize-py, in its own venv, so it never touches the system Python.
if ! [ -x "$CPY" ] || [ "$("$CPY" --version 2>/dev/null | awk '{print $2}')" != "$CPY_VERSION" ]; then
  missing "componentize-py $CPY_VERSION"
  command -v python3 >/dev/null || die "python3 is not installed"
  python3 -m venv "$CPY_VENV" || die "python3 -m venv failed (apt-get install python3-venv?)"
  "$CPY_VENV/bin/pip" install --quiet --disable-pip-version-check "componentize-py==$CPY_VERSION" \
    || die "pip install componentize-py==$CPY_VERSION failed"
fi

# npm packages, exactly as locked. The stamp holds the lock file's hash, so
# an unchanged lock costs nothing and a changed one reinstalls.
lock_hash="$(sha256sum "$HERE/package-lock.json" | cut -c1-64)"
stamp="$HERE/node_modules/.sqlite-sessions-lock-hash"
if [ "$(cat "$stamp" 2>/dev/null)" != "$lock_hash" ]; then
  missing "the npm packages of polyglot/package-lock.json"
  (cd "$HERE" && npm ci --no-audit --no-fund --loglevel=error >&2) || die "npm ci failed in polyglot/"
  echo "$lock_hash" > "$stamp"
fi

# wac-cli (composition). Without its default features (the package
# registry client and WIT input) it compiles 113 crates instead of 357
# (measured: 3.5 CPU-minutes), and `wac plug` of two .wasm files, all we
# use, gives byte-for-byte the same composition.
if [ "$(wac --version 2>/dev/null | awk '{print $2}' | cut -d. -f1,2)" != "$WAC_SERIES" ]; then
  missing "wac-cli $WAC_SERIES.x"
  env -u CARGO_TARGET_DIR cargo install --locked --no-default-features wac-cli --version "~$WAC_SERIES" >&2 || die "cargo install wac-cli failed"
  command -v wac >/dev/null || die "wac was installed but is not on PATH (add ~/.cargo/bin)"
fi

echo "polyglot tools: node $(node --version), componentize-py $("$CPY" --version | awk '{print $2}'), \
componentize-js $(node -p "require('$HERE/node_modules/@bytecodealliance/componentize-js/package.json').version"), \
jco $(node -p "require('$HERE/node_modules/@bytecodealliance/jco/package.json').version"), \
preview2-shim $(node -p "require('$HERE/node_modules/@bytecodealliance/preview2-shim/package.json').version"), \
$(wac --version)" >&2
