#!/bin/sh
# Installs what Baton's browser tests need, once, and does nothing when it is there:
#
#   chromium  Debian's `chromium` package (as root, with apt-get), unless BATON_CHROMIUM
#             names a Chromium or Chrome binary to use instead
#   npm       playwright-core and axe-core, exactly as package-lock.json pins them, into
#             node_modules/ beside this script (`npm ci`)
#
# Usage: install.sh [chromium] [npm]     (both when no argument is given)
#
# The tests run it when something is missing and `.ci/run` runs it before the tests.
# Each step holds a file lock, so test processes running at the same time install once.
set -eu

here=$(cd "$(dirname "$0")" && pwd)
lock_dir=${TMPDIR:-/tmp}

install_chromium() {
    if [ -n "${BATON_CHROMIUM:-}" ]; then
        [ -x "$BATON_CHROMIUM" ] && return 0
        echo "BATON_CHROMIUM=$BATON_CHROMIUM is not an executable file" >&2
        exit 1
    fi
    [ -x /usr/bin/chromium ] && return 0
    if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null 2>&1; then
        echo "Chromium is missing: the browser tests need Debian's chromium package" \
            "(sudo apt-get install chromium), or BATON_CHROMIUM set to a Chromium or Chrome binary" >&2
        exit 1
    fi
    (
        flock 9
        if [ ! -x /usr/bin/chromium ]; then
            echo "installing Debian's chromium for the browser tests" >&2
            export DEBIAN_FRONTEND=noninteractive
            apt-get update -qq
            apt-get install -y -qq -o DPkg::Lock::Timeout=600 chromium >/dev/null
        fi
    ) 9>"$lock_dir/baton-chromium-install.lock"
    [ -x /usr/bin/chromium ] || { echo "apt-get did not install /usr/bin/chromium" >&2; exit 1; }
}

install_npm() {
    if ! command -v npm >/dev/null 2>&1 || ! command -v node >/dev/null 2>&1; then
        echo "Node.js is missing: the browser tests need node (20 or later) and npm" >&2
        exit 1
    fi
    # One lock per checkout of the repository.
    key=$(printf %s "$here" | cksum | cut -d' ' -f1)
    (
        flock 9
        cd "$here"
        # The copy of the lock file that the last successful install left tells whether
        # node_modules/ matches package-lock.json.
        if ! cmp -s package-lock.json node_modules/.baton-package-lock.json; then
            echo "installing playwright-core and axe-core with npm ci" >&2
            npm ci --no-audit --no-fund --loglevel=error
            cp package-lock.json node_modules/.baton-package-lock.json
        fi
    ) 9>"$lock_dir/baton-npm-install-$key.lock"
}

[ $# -eq 0 ] && set -- chromium npm
for step in "$@"; do
    case $step in
    chromium) install_chromium ;;
    npm) install_npm ;;
    *)
        echo "unknown step: $step (chromium, npm)" >&2
        exit 2
        ;;
    esac
done
