#!/usr/bin/env bash
# Builds everything the polyglot tests run, from a given store component:
#
#   polyglot/build.sh <sqlite_sessions.wasm>
#
# - the Python runner guest (componentize-py) and the JavaScript runner
#   guest (componentize-js), each composed with the store by `wac plug`;
# - the store transpiled to an ES module by `jco transpile`, for Node.
#
# Output goes to polyglot/build/ (git-ignored). Each artifact is named by a
# hash of its inputs and reused while they are unchanged, so only the first
# run pays for componentize-py (~50 s) and componentize-js (~60 s). On
# success, stdout is exactly three lines the tests read:
#   python=<composed .wasm>  js=<composed .wasm>  node=<transpiled .js>
# Tools come from setup.sh; a missing one fails here (never skipped).
set -euo pipefail

HERE="$(cd "$(dirname "$0")" && pwd)"
ROOT="$(cd "$HERE/.." && pwd)"
# shellcheck source=versions.sh
source "$HERE/versions.sh"

store="${1:?usage: build.sh <sqlite_sessions.wasm>}"
[ -f "$store" ] || { echo "build.sh: no store component at $store" >&2; exit 1; }
store="$(cd "$(dirname "$store")" && pwd)/$(basename "$store")"

bash "$HERE/setup.sh" --check

OUT="$HERE/build"
mkdir -p "$OUT"
# One build at a time per checkout (test binaries may run concurrently).
exec 9>"$OUT/.lock"
flock 9

hash_of() { cat "$@" | sha256sum | cut -c1-16; }
log() { echo "build.sh: $*" >&2; }
# Keeps only the newest artifact of a kind: removes `<dir>/<prefix>*` but `keep`.
prune() {
  local dir="$1" prefix="$2" keep="$3"
  find "$dir" -maxdepth 1 -name "$prefix*" ! -name "$(basename "$keep")" -exec rm -rf {} +
}

# The WIT the guest tools read: the runner world, and the store's interface
# as its dependency, with the package that one imports (wasi:keyvalue, for
# its key-value world). Generated from wit/ on every build, never kept in
# git, so there is one source of truth for the store's contract.
WIT="$OUT/wit"
rm -rf "$WIT"
mkdir -p "$WIT/deps/store"
cp "$HERE/wit/runner.wit" "$WIT/"
cp "$ROOT/wit/store.wit" "$WIT/deps/store/"
cp -r "$ROOT/wit/deps/keyvalue" "$WIT/deps/"
wit_hash="$(hash_of "$WIT/runner.wit" "$WIT/deps/store/store.wit" "$WIT"/deps/keyvalue/*.wit)"
WORLD=flow-runner

# Python guest.
mkdir -p "$OUT/python"
py="$OUT/python/runner-$(echo "$wit_hash $CPY_VERSION $(hash_of "$HERE"/python/*.py)" | sha256sum | cut -c1-16).wasm"
if [ ! -f "$py" ]; then
  log "componentize-py $CPY_VERSION: building the Python runner (about a minute)"
  (cd "$OUT" && "$CPY" -d "$WIT" -w "$WORLD" componentize -p "$HERE/python" app -o "$py.tmp" >&2)
  mv "$py.tmp" "$py"
  prune "$OUT/python" runner- "$py"
fi

# JavaScript guest.
mkdir -p "$OUT/js"
js="$OUT/js/runner-$(echo "$wit_hash $(hash_of "$HERE"/js/*.js "$HERE"/js/*.mjs "$HERE/package-lock.json")" | sha256sum | cut -c1-16).wasm"
if [ ! -f "$js" ]; then
  log "componentize-js: building the JavaScript runner (about a minute)"
  node "$HERE/js/componentize.mjs" "$HERE/js/guest.js" "$WIT" "$WORLD" "$js.tmp"
  mv "$js.tmp" "$js"
  prune "$OUT/js" runner- "$js"
fi

# Compositions: each guest's store import satisfied by the store component.
store_hash="$(hash_of "$store")"
mkdir -p "$OUT/composed"
compose() {
  local guest="$1" name="$2"
  local out
  out="$OUT/composed/$name-$(echo "$(basename "$guest") $store_hash" | sha256sum | cut -c1-16).wasm"
  if [ ! -f "$out" ]; then
    log "wac plug: $name runner + store"
    wac plug "$guest" --plug "$store" -o "$out.tmp" >&2
    mv "$out.tmp" "$out"
    prune "$OUT/composed" "$name-" "$out"
  fi
  echo "$out"
}
py_composed="$(compose "$py" python)"
js_composed="$(compose "$js" js)"

# The store for Node. Under polyglot/ so that the bindings' bare imports of
# @bytecodealliance/preview2-shim resolve to polyglot/node_modules.
mkdir -p "$OUT/node"
node_dir="$OUT/node/store-$(echo "$store_hash $(hash_of "$HERE/package-lock.json")" | sha256sum | cut -c1-16)"
if [ ! -f "$node_dir/sqlite_sessions.js" ]; then
  log "jco transpile: the store for Node"
  rm -rf "$node_dir.tmp"
  node "$HERE/node_modules/@bytecodealliance/jco/dist/jco.js" transpile "$store" \
    -o "$node_dir.tmp" --name sqlite_sessions --quiet >&2
  rm -rf "$node_dir"
  mv "$node_dir.tmp" "$node_dir"
  prune "$OUT/node" store- "$node_dir"
fi

echo "python=$py_composed"
echo "js=$js_composed"
echo "node=$node_dir/sqlite_sessions.js"
