#!/usr/bin/env bash
# Builds the Python test environment (.venv-test, or $MLSHIP_TEST_VENV) from requirements/test.txt, the hashed
# lock, and reuses it while the lock is unchanged (a stamp holds the lock's sha256). PyTorch's Linux wheels
# bring the CUDA runtime wheels (~6 GB installed); uv keeps its download cache in ~/.cache/uv, so a rebuild
# after a lock change fetches only what changed. Prints the environment's python on the last line.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
venv="${MLSHIP_TEST_VENV:-$root/.venv-test}"
lock="$root/requirements/test.txt"
want="$(sha256sum "$lock" "$root/requirements/bootstrap.txt" | sha256sum | cut -d' ' -f1)"
stamp="$venv/.mlship-lock-sha256"
if [ -x "$venv/bin/python" ] && [ "$(cat "$stamp" 2>/dev/null)" = "$want" ]; then
  echo "$venv/bin/python"
  exit 0
fi
python="${MLSHIP_PYTHON:-python3}"
if ! "$python" -c 'import venv, ensurepip' 2>/dev/null; then
  # Debian splits venv/ensurepip out of python3.
  if [ "$(id -u)" -ne 0 ] && ! command -v sudo >/dev/null; then
    echo "setup-python-env: $python has no venv module; install python3-venv" >&2
    exit 1
  fi
  SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO=sudo
  $SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends python3-venv >/dev/null
fi
echo "setup-python-env: building $venv from requirements/test.txt (one time per lock change)" >&2
start=$(date +%s)
rm -rf "$venv"
"$python" -m venv "$venv"
"$venv/bin/python" -m pip install -q --disable-pip-version-check --require-hashes -r "$root/requirements/bootstrap.txt" >&2
# --system-certs: the platform's certificate store, as pip uses it; networks that inspect TLS (many labs) install
# their CA there, and uv's own root list would refuse the PyPI connection.
"$venv/bin/uv" pip install -q --system-certs --python "$venv/bin/python" --require-hashes -r "$lock" >&2
echo "$want" > "$stamp"
echo "setup-python-env: ready in $(( $(date +%s) - start )) s" >&2
echo "$venv/bin/python"
