# Sourced by scripts/dev, scripts/test and .ci/run: create or reuse .venv in the repo root
# with the system python3 (or $PYTHON), and `install_extra NAME` installs the project with
# that extra only when pyproject.toml changed since the last install of that extra.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
PY="${PYTHON:-python3}"
VENV="$ROOT/.venv"

fail() {
  echo "webhook-worker: error: $*" >&2
  exit 2
}

if [ ! -x "$VENV/bin/python" ]; then
  command -v "$PY" >/dev/null 2>&1 || fail "'$PY' not found; install Python 3.11 or newer (or set PYTHON=...)"
  "$PY" -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else 1)' ||
    fail "Python 3.11 or newer is required, '$PY' is $("$PY" -V 2>&1) (set PYTHON=...)"
  "$PY" -m venv "$VENV" </dev/null ||
    { rm -rf "$VENV"; fail "'$PY -m venv' failed (on Debian/Ubuntu: apt install python3-venv)"; }
fi
"$VENV/bin/python" -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else 1)' ||
  fail "$VENV uses Python older than 3.11; remove it and run again"

install_extra() {
  local extra="$1" stamp="$VENV/.installed-$1" digest
  # A content digest, not mtimes: a checkout can give an older pyproject a newer mtime.
  digest="$("$VENV/bin/python" -c 'import hashlib, sys; print(hashlib.sha256(open(sys.argv[1], "rb").read()).hexdigest())' "$ROOT/pyproject.toml")"
  if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$digest" ]; then
    echo "webhook-worker: installing the project into .venv ($extra)..." >&2
    "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check -e "$ROOT[$extra]" </dev/null
    echo "$digest" >"$stamp"
  fi
}
