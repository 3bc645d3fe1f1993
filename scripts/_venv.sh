# Shared by scripts/test.sh and scripts/demo.sh: create .venv with Python >= 3.11 if missing.
# On Raspberry Pi OS the venv sees the system packages (python3-picamera2 and its numpy 1.x).
ensure_venv() {
    if [ -x .venv/bin/python ]; then
        return 0
    fi
    local py=""
    for candidate in python3.13 python3.12 python3.11 python3; do
        if command -v "$candidate" >/dev/null 2>&1 &&
            "$candidate" -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null; then
            py=$candidate
            break
        fi
    done
    if [ -z "$py" ]; then
        echo "Python 3.11 or newer is needed (apt-get install python3 python3-venv)" >&2
        exit 1
    fi
    local flags=()
    if [ -e /usr/lib/python3/dist-packages/picamera2 ]; then
        flags+=(--system-site-packages)
    fi
    echo "Creating .venv with $py ${flags[*]}"
    "$py" -m venv "${flags[@]}" .venv || {
        echo "Creating the venv failed: install python3-venv (apt-get install python3-venv)" >&2
        exit 1
    }
    .venv/bin/python -m pip install -q --upgrade pip
}
