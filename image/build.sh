#!/bin/sh
# Build the Sitzungsbox root file system: image/build.sh --arch amd64|arm64 --out DIR (root; see README.md)
set -eu
here=$(cd "$(dirname "$0")" && pwd)
py="$here/../.venv/bin/python"
[ -x "$py" ] || py=python3
exec "$py" "$here/build.py" "$@"
