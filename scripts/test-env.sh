#!/usr/bin/env bash
# Prepares everything the test suite needs on a fresh machine, idempotently:
#   - ./.venv with alpaca-py (the SDK referee), pytest, aiosmtpd (the SMTP server tests use) and
#     trustme (a throwaway CA for the SMTP TLS tests);
#   - Debian's chromium for the status-page browser test, when it is missing.
set -euo pipefail
cd "$(dirname "$0")/.."

if [ ! -x .venv/bin/python ]; then
    python3 -m venv .venv
fi
if ! .venv/bin/python -c 'import alpaca, pytest, aiosmtpd, trustme' 2>/dev/null \
    || ! cmp -s tests/requirements.txt .venv/.requirements.txt; then
    .venv/bin/pip install --quiet --disable-pip-version-check -r tests/requirements.txt
    cp tests/requirements.txt .venv/.requirements.txt
fi

if [ "${TRADEWARDEN_SKIP_CHROMIUM:-0}" != 1 ] && ! command -v chromium >/dev/null 2>&1; then
    if command -v apt-get >/dev/null 2>&1; then
        export DEBIAN_FRONTEND=noninteractive
        apt-get update -qq >/dev/null
        apt-get install -y -qq --no-install-recommends chromium >/dev/null
    else
        echo "warning: chromium is missing and apt-get is not available; the browser test will fail" >&2
    fi
fi
