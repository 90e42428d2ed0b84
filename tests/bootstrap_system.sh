#!/bin/sh
# Installs the system packages some tests need when they are missing: Debian's chromium and
# chromium-driver (browser tests), postgresql (the suite's PostgreSQL runs) and procps (pgrep).
# Only as root with apt-get; anywhere else it prints what to install and exits 0, and those
# tests skip themselves with a reason (in CI the PostgreSQL tests fail instead).
set -u

missing=""
command -v chromium >/dev/null 2>&1 || missing="$missing chromium"
command -v chromedriver >/dev/null 2>&1 || missing="$missing chromium-driver"
ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || missing="$missing postgresql"
command -v pgrep >/dev/null 2>&1 || missing="$missing procps"
command -v runuser >/dev/null 2>&1 || missing="$missing util-linux"

if [ -z "$missing" ]; then
    exit 0
fi

if [ "$(id -u)" -ne 0 ] || ! command -v apt-get >/dev/null 2>&1; then
    echo "bootstrap_system: missing:$missing; install them (e.g. apt-get install$missing) to run the browser and PostgreSQL tests; skipping them otherwise" >&2
    exit 0
fi

echo "bootstrap_system: installing$missing" >&2
export DEBIAN_FRONTEND=noninteractive
if ! { apt-get update -q && apt-get install -y -q --no-install-recommends $missing; } >&2; then
    echo "bootstrap_system: apt-get failed; the browser and PostgreSQL tests will skip" >&2
fi
exit 0
