#!/usr/bin/env bash
# Portgate's two commands (see README):
#   ./portgate.sh demo   install everything and run server + gate agent + kiosk page on demo data
#   ./portgate.sh test   install everything and run the whole test suite
set -euo pipefail
cd "$(dirname "$0")"

SUDO=""
if [ "$(id -u)" != "0" ]; then SUDO="sudo"; fi

apt_install() {
    # Install only the Debian packages that are missing; update the package lists once if needed.
    local missing=()
    for pkg in "$@"; do
        dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
    done
    if [ "${#missing[@]}" -gt 0 ]; then
        echo "portgate: installing system packages: ${missing[*]}"
        $SUDO apt-get update -qq
        DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
    fi
}

python_bin() {
    for candidate in python3.11 python3; do
        if command -v "$candidate" >/dev/null && "$candidate" -c 'import sys; sys.exit(sys.version_info < (3, 11))'; then
            echo "$candidate"; return
        fi
    done
    echo "portgate: Python 3.11 or newer is required" >&2; exit 1
}

setup_venv() {
    local extras="$1"
    if [ ! -x .venv/bin/python ]; then
        "$(python_bin)" -m venv .venv
    fi
    .venv/bin/python -m pip install -q --upgrade pip >/dev/null
    .venv/bin/python -m pip install -q -e ".${extras}"
}

case "${1:-}" in
    demo)
        apt_install python3-venv libzbar0
        setup_venv ""
        exec .venv/bin/python -m server.demo_stack "${@:2}"
        ;;
    test)
        apt_install python3-venv libzbar0 chromium fonts-liberation poppler-utils postgresql haproxy
        setup_venv "[test]"
        exec .venv/bin/python -m pytest -n 2 -p no:cacheprovider "${@:2}"
        ;;
    *)
        echo "usage: $0 demo|test" >&2
        exit 2
        ;;
esac
