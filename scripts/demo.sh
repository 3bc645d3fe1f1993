#!/usr/bin/env bash
# Create .venv if missing, install the kiosk, and play the scripted counter session.
set -euo pipefail
cd "$(dirname "$0")/.."
if ! dpkg-query -W -f='${Status}' libzbar0 2>/dev/null | grep -q "install ok installed"; then
    echo "note: libzbar0 is not installed; the demo uses zxing-cpp and does not need it" >&2
fi
# shellcheck source=scripts/_venv.sh
source scripts/_venv.sh
ensure_venv
.venv/bin/python -m pip install -q -c constraints.txt -e .
exec .venv/bin/kiosk demo "$@"
