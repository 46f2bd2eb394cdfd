#!/usr/bin/env bash
# Installs sdk-python as a user would (not editable), with every extra, into
# .tools/pysdk: the venv the Python tests, lints and matrix doors run in.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
pysdk="$root/.tools/pysdk"
if [[ ! -x "$pysdk/bin/python" ]]; then
  python3 -m venv "$pysdk"
fi
"$pysdk/bin/pip" install -q --upgrade "$root/sdk-python[all,dev]"
"$pysdk/bin/pip" install -q --force-reinstall --no-deps "$root/sdk-python"
