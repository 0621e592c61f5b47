#!/usr/bin/env bash
# Set up .venv from constraints.txt and run the whole test suite, browser tests included.
# Extra arguments go to pytest, e.g. `bash tests/run.sh -k cache -x`.
set -euo pipefail
cd "$(dirname "$0")/.."

python3 -m venv .venv
.venv/bin/python -m pip install -q --disable-pip-version-check -c constraints.txt -e '.[all]'

# The browser tests drive Debian's Chromium; Playwright's own browser download cannot work offline.
if [ ! -x /usr/bin/chromium ]; then
    if command -v apt-get >/dev/null && [ "$(id -u)" = 0 ]; then
        echo "installing chromium for the browser tests (apt-get)" >&2
        apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
    else
        echo "error: the browser tests need Chromium at /usr/bin/chromium; install it (Debian: sudo apt-get install chromium) and run again" >&2
        exit 1
    fi
fi

export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1
exec .venv/bin/python -m pytest "$@"
