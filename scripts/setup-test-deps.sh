#!/usr/bin/env bash
# Debian packages the tests need, installed only when missing:
#   chromium: the release report is rendered in headless Chromium.
# PyTorch, onnx and the other Python packages come from the pinned environment (scripts/setup-python-env.sh,
# .venv-test), not from Debian: python3-torch (1.13, 2022) is no longer a tested stack (docs/export-onnx.md).
set -euo pipefail
missing=()
command -v chromium >/dev/null 2>&1 || missing+=(chromium)
# Step summaries use emoji (as GitHub renders them); the report screenshot needs a font for them.
[ -e /usr/share/fonts/truetype/noto/NotoColorEmoji.ttf ] || missing+=(fonts-noto-color-emoji)
[ ${#missing[@]} -eq 0 ] && exit 0
if [ "$(id -u)" -ne 0 ] && ! command -v sudo >/dev/null; then
  echo "setup-test-deps: need root (or sudo) to install: ${missing[*]}" >&2
  exit 1
fi
SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO=sudo
echo "setup-test-deps: installing ${missing[*]} (one time)"
$SUDO apt-get update -qq
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
