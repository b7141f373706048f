#!/usr/bin/env bash
# Make Debian's Chromium available for the browser test of the report.
# Under CI (CI=true, as root) it is installed if missing; elsewhere a missing
# Chromium only prints a notice and the browser test is skipped.
set -euo pipefail
if command -v chromium >/dev/null 2>&1; then
  exit 0
fi
if [ "${CI:-}" = "true" ] && [ "$(id -u)" = 0 ]; then
  echo "ensure-chromium: installing Debian's chromium for the report browser test" >&2
  apt-get update -qq >/dev/null
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends chromium >/dev/null
else
  echo "NOTICE: Chromium is not installed: the report browser test will be skipped" >&2
fi
