#!/usr/bin/env bash
# Build the one-file `vanta` executable with PyInstaller: build/dist/vanta.
#
#     bash build/build.sh [extra PyInstaller options, e.g. --clean]
#
# Runs from any cwd. Uses the project's .venv Python if there is one, else python3
# (override with PYTHON=/path/to/python). PyInstaller's work dir is build/work/.
set -euo pipefail

BUILD_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(dirname "$BUILD_DIR")"

if [[ -n "${PYTHON:-}" ]]; then
    PY="$PYTHON"
elif [[ -x "$ROOT/.venv/bin/python" ]]; then
    PY="$ROOT/.venv/bin/python"
else
    PY="python3"
fi

if ! "$PY" -c "import PyInstaller" 2>/dev/null; then
    echo "build.sh: PyInstaller is not importable by $PY;" \
         "install the dev extra: $PY -m pip install -e '$ROOT[dev]'" >&2
    exit 2
fi

cd "$ROOT"
"$PY" -m PyInstaller --noconfirm --log-level WARN \
    --distpath "$BUILD_DIR/dist" --workpath "$BUILD_DIR/work" \
    "$@" "$BUILD_DIR/vanta.spec"

BINARY="$BUILD_DIR/dist/vanta"
if [[ ! -x "$BINARY" ]]; then
    echo "build.sh: PyInstaller finished but $BINARY is missing" >&2
    exit 1
fi
echo "$BINARY"
