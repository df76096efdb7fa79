#!/usr/bin/env bash
# The one test command (README, .ci/run): installs what the tests need, then runs lint and the suite.
#  - Debian packages: wallpaper photos (real, benign images for the PDQ agreement tests) and Chromium (the
#    report's browser test). Installed only when missing and when we can (root with apt-get).
#  - .venv at the repository root with cleanset and its dev extras.
set -euo pipefail
cd "$(dirname "$0")/.."

DEB_PACKAGES=(gnome-backgrounds mate-backgrounds plasma-workspace-wallpapers lomiri-wallpapers
              lomiri-wallpapers-16.04 lomiri-wallpapers-20.04 ukui-wallpapers chromium fonts-dejavu-core)
if command -v apt-get >/dev/null && [ "$(id -u)" = 0 ]; then
  missing=()
  for p in "${DEB_PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
  done
  if [ ${#missing[@]} -gt 0 ]; then
    echo "installing Debian packages: ${missing[*]}"
    apt-get update -q >/dev/null
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${missing[@]}" >/dev/null
  fi
fi

PY=${PYTHON:-python3}
[ -x .venv/bin/python ] || "$PY" -m venv .venv
.venv/bin/python -m pip install -q --upgrade pip >/dev/null
.venv/bin/python -m pip install -q -e '.[dev]'

.venv/bin/ruff check src tests bench
exec .venv/bin/python -m pytest "$@"
