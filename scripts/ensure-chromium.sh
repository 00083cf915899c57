#!/usr/bin/env bash
# Make sure a headless Chromium is there for the dashboard's browser tests (tests/dashboard).
# Uses $NASFORGE_CHROMIUM or Debian's /usr/bin/chromium; when missing, installs Debian's
# chromium package (as root, with apt-get). Quiet when the browser is there. Never fails the
# build: without a browser the browser tests skip with the reason.
set -u
BROWSER="${NASFORGE_CHROMIUM:-/usr/bin/chromium}"

works() { [ -x "$BROWSER" ] && "$BROWSER" --headless --no-sandbox --version >/dev/null 2>&1; }

works && exit 0
if [ "$(id -u)" != 0 ]; then
  echo "chromium: $BROWSER is missing and this is not root, so it cannot be installed" \
    "(run: sudo apt-get install chromium); the dashboard browser tests will be skipped"
  exit 0
fi
if ! command -v apt-get >/dev/null 2>&1; then
  echo "chromium: $BROWSER is missing and there is no apt-get to install it;" \
    "the dashboard browser tests will be skipped"
  exit 0
fi
export DEBIAN_FRONTEND=noninteractive
apt-get install -y -qq chromium >/dev/null 2>&1 ||
  (apt-get update -qq && apt-get install -y -qq chromium) >/dev/null 2>&1
if ! works; then
  echo "chromium: installing Debian's chromium package failed (or $BROWSER does not run);" \
    "the dashboard browser tests will be skipped"
fi
exit 0
