#!/usr/bin/env bash
# Installs what scripts/ui-test.py needs: Debian's chromium and
# chromium-driver, and Selenium from PyPI. Idempotent: installs only what is
# missing. Run as root (or with sudo available) on Debian/Ubuntu.
set -euo pipefail

SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi

missing=()
command -v chromium >/dev/null 2>&1 || missing+=(chromium)
command -v chromedriver >/dev/null 2>&1 || missing+=(chromium-driver)
command -v python3 >/dev/null 2>&1 || missing+=(python3)
python3 -m pip --version >/dev/null 2>&1 || missing+=(python3-pip)
if [ "${#missing[@]}" -gt 0 ]; then
  echo "installing ${missing[*]}"
  $SUDO apt-get update
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y --no-install-recommends "${missing[@]}"
fi

if ! python3 -c 'import selenium' >/dev/null 2>&1; then
  echo "installing selenium"
  # Debian's python3 is "externally managed"; a pyenv/venv python is not.
  python3 -m pip install --quiet 'selenium>=4.11' \
    || python3 -m pip install --quiet --break-system-packages 'selenium>=4.11'
fi

chromium --version
chromedriver --version
python3 -c 'import selenium; print("selenium", selenium.__version__)'
