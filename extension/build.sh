#!/usr/bin/env bash
# Build the EvalHub JupyterLab sidebar (npm registry only, no GitHub) into
# extension/evalhub_jupyter/labextension, which the wheel ships as
# share/jupyter/labextensions/evalhub-jupyter. Node is needed here only, never by a user.
#
# Usage: extension/build.sh [--no-develop]
#   By default it then makes the current environment's JupyterLab see the build: a copy of it in
#   $PREFIX/share/jupyter/labextensions/evalhub-jupyter (what pip installs from the wheel; a copy,
#   not a symlink, since pip uninstalls what it installed there), and the server extension enabled
#   in $PREFIX/etc/jupyter/jupyter_server_config.d/evalhub_jupyter.json.
#   --no-develop only builds. A wheel or sdist build (`pip wheel .`, `python -m build`) runs the
#   same steps by itself through pyproject's hatch-jupyter-builder hook when the build is missing.
set -euo pipefail
cd "$(dirname "$0")"
here=$(pwd)
root=$(cd .. && pwd)

if [ -z "${VIRTUAL_ENV:-}" ] && [ -x "$root/.venv/bin/python" ]; then
  # shellcheck disable=SC1091
  . "$root/.venv/bin/activate"
fi
command -v node >/dev/null || { echo "build.sh: node (>= 20.19) is needed to build the extension" >&2; exit 1; }
command -v jlpm >/dev/null || { echo "build.sh: jlpm comes with jupyterlab: pip install 'jupyterlab>=4.6,<4.7'" >&2; exit 1; }

start=$(date +%s)
echo "==> jlpm install (yarn.lock, npm registry)"
jlpm install --immutable
echo "==> tsc"
jlpm build:lib
echo "==> jupyter-builder build"
rm -rf evalhub_jupyter/labextension
jlpm build:labextension
# (build:labextension also copies install.json in: it tells `jupyter labextension list` and the
# extension manager that pip installs the sidebar, as evalhub)
test -f evalhub_jupyter/labextension/package.json
test -f evalhub_jupyter/labextension/install.json
echo "==> built evalhub_jupyter/labextension in $(( $(date +%s) - start ))s"

if [ "${1:-}" = "--no-develop" ]; then
  exit 0
fi

if ! (cd / && python -c "import evalhub_jupyter") 2>/dev/null; then
  echo "==> evalhub_jupyter is not importable: reinstalling evalhub in editable mode (adds extension/ to the path)"
  python -m pip install -q --no-deps -e "$root"
fi
(cd / && python -c "import evalhub_jupyter") || { echo "build.sh: evalhub_jupyter still not importable" >&2; exit 1; }

prefix=$(python -c 'import sys; print(sys.prefix)')
labext="$prefix/share/jupyter/labextensions/evalhub-jupyter"
mkdir -p "$(dirname "$labext")"
if [ -L "$labext" ]; then
  rm -f "$labext"  # the symlink of an older build.sh
fi
rm -rf "$labext"
cp -r "$here/evalhub_jupyter/labextension" "$labext"
echo "==> copied the build to $labext"

confd="$prefix/etc/jupyter/jupyter_server_config.d"
mkdir -p "$confd"
cp jupyter-config/jupyter_server_config.d/evalhub_jupyter.json "$confd/evalhub_jupyter.json"
echo "==> enabled the evalhub_jupyter server extension ($confd/evalhub_jupyter.json)"

# Captured first: with pipefail, `grep -q` closing the pipe early would fail the check.
labexts=$(cd / && jupyter labextension list 2>&1)
grep -q "evalhub-jupyter.*enabled.*OK" <<<"$labexts" \
  && echo "==> JupyterLab sees evalhub-jupyter" \
  || { echo "build.sh: jupyter labextension list does not show evalhub-jupyter" >&2; echo "$labexts" >&2; exit 1; }
serverexts=$(cd / && jupyter server extension list 2>&1)
grep -q "evalhub_jupyter.*OK" <<<"$serverexts" \
  && echo "==> Jupyter server loads evalhub_jupyter" \
  || { echo "build.sh: jupyter server extension list does not show evalhub_jupyter" >&2; echo "$serverexts" >&2; exit 1; }
