#!/bin/sh
# Installs the system packages the browser tests need (Debian's chromium and chromium-driver)
# when they are missing. Only as root with apt-get; anywhere else it prints what to install and
# exits 0, and the browser tests skip themselves with a reason.
set -u

missing=""
command -v chromium >/dev/null 2>&1 || missing="$missing chromium"
command -v chromedriver >/dev/null 2>&1 || missing="$missing chromium-driver"

if [ -z "$missing" ]; then
    exit 0
fi

if [ "$(id -u)" -ne 0 ] || ! command -v apt-get >/dev/null 2>&1; then
    echo "bootstrap_system: missing:$missing; install them (e.g. apt-get install$missing) to run the browser tests; skipping them otherwise" >&2
    exit 0
fi

echo "bootstrap_system: installing$missing" >&2
export DEBIAN_FRONTEND=noninteractive
if ! { apt-get update -q && apt-get install -y -q --no-install-recommends $missing; } >&2; then
    echo "bootstrap_system: apt-get failed; the browser tests will skip" >&2
fi
exit 0
