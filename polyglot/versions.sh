# Tool versions for the polyglot tests, sourced by setup.sh and build.sh.
# The npm versions are pinned in package.json / package-lock.json.
CPY_VERSION=0.25.1
WAC_SERIES=0.12
TOOLS_DIR="${SQLITE_SESSIONS_TOOLS:-$HOME/.cache/sqlite-sessions-polyglot}"
CPY_VENV="$TOOLS_DIR/venv-cpy-$CPY_VERSION"
CPY="$CPY_VENV/bin/componentize-py"
