#!/usr/bin/env bash
# The browser tests (docs/WEB.md, "Browser tests"), as CTest runs them:
#   tests/browser/run.sh PARLEYD_BIN
# Installs the pinned npm packages when needed (npm ci), then runs every tests/*.test.js with
# node's test runner, one file at a time. Exits non-zero on any failure.
# Environment: PARLEY_WEB_ROOT (default: web/ of this repo), PARLEY_CHROMIUM (default
# /usr/bin/chromium), PARLEY_SCREENSHOT_DIR, PARLEY_UPDATE_SCREENSHOTS=1 (docs/screenshots/).
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"

# An absolute path, resolved before changing directory. It may not exist yet (being relinked).
if [[ $# -ge 1 && -n "$1" ]]; then
  case "$1" in
    /*) PARLEYD_BIN="$1" ;;
    *) PARLEYD_BIN="$PWD/$1" ;;
  esac
fi
cd "$here"
: "${PARLEYD_BIN:=$here/../../build/src/parleyd/parleyd}"
export PARLEYD_BIN

if ! command -v node >/dev/null; then
  echo "run.sh: node is not installed (apt-get install nodejs npm)" >&2
  exit 1
fi
chromium="${PARLEY_CHROMIUM:-/usr/bin/chromium}"
if [[ ! -x "$chromium" ]]; then
  echo "run.sh: no Chromium at $chromium (apt-get install chromium, or set PARLEY_CHROMIUM)" >&2
  exit 1
fi

# npm ci when node_modules is missing or older than the lock file. playwright-core never
# downloads a browser; the variable only makes sure nothing tries.
if [[ ! -d node_modules || package-lock.json -nt node_modules ]]; then
  PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 npm ci --no-audit --no-fund
  touch node_modules
fi

echo "run.sh: parleyd $PARLEYD_BIN, $("$chromium" --version 2>/dev/null | tail -1)"
start=$(date +%s)
status=0
node --test --test-concurrency=1 --test-timeout=150000 tests/*.test.js || status=$?
echo "run.sh: browser tests took $(( $(date +%s) - start )) s, screenshots in ${PARLEY_SCREENSHOT_DIR:-${TMPDIR:-/tmp}/parley-screenshots}"
if [[ $status -ne 0 ]]; then
  echo "run.sh: FAILED (see the diagnostics above: parleyd stderr and page console of each failed test)" >&2
fi
exit $status
