#!/usr/bin/env bash
# ansible-test bootstraps pip in its venvs with get-pip.py, downloaded from a host we cannot reach.
# Write an equivalent bootstrap script into its cache, built from the pinned pip wheel.
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
pip_version=$(sed -n 's/^pip==//p' "$repo/requirements/constraints.txt")
target="$HOME/.ansible/test/cache/get_pip_${pip_version//./_}.py"
[[ -s "$target" ]] && exit 0

mkdir -p "$(dirname "$target")"
wheel_dir=$(mktemp -d)
trap 'rm -rf "$wheel_dir"' EXIT
"$repo/.venv/bin/python" -m pip download --quiet --no-deps --only-binary=:all: -d "$wheel_dir" "pip==$pip_version"
wheel=$(ls "$wheel_dir"/pip-*.whl)
{
  cat <<'PY'
"""Offline stand-in for get-pip.py: installs pip from the wheel embedded below."""
import base64
import os
import sys
import tempfile

WHEEL_B64 = """
PY
  base64 "$wheel"
  cat <<'PY'
"""


def main():
    # get-pip.py options that pip itself does not understand.
    args = [a for a in sys.argv[1:] if a not in ('--no-setuptools', '--no-wheel')]
    with tempfile.TemporaryDirectory() as tmp:
        wheel = os.path.join(tmp, 'pip-py3-none-any.whl')
        with open(wheel, 'wb') as handle:
            handle.write(base64.b64decode(WHEEL_B64))
        sys.path.insert(0, wheel)
        from pip._internal.cli.main import main as pip_main
        return pip_main(['install', '--upgrade', '--force-reinstall'] + args)


if __name__ == '__main__':
    sys.exit(main())
PY
} > "$target.tmp"
mv "$target.tmp" "$target"
echo "seed-get-pip: wrote $target"
