#!/usr/bin/env bash
# Create or refresh .venv from the pinned requirements; a no-op when nothing changed.
set -euo pipefail
cd "$(dirname "$0")/.."
source tools/versions.env

venv=.venv
stamp="$venv/.setup-stamp"
inputs=(requirements/constraints.txt requirements/dev.txt requirements/apt.txt tools/setup.sh)
[[ -f services/pyproject.toml ]] && inputs+=(services/pyproject.toml)
want=$(cat "${inputs[@]}" | sha256sum | cut -d' ' -f1)

missing_apt=()
while read -r pkg; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing_apt+=("$pkg")
done < <(grep -vE '^\s*(#|$)' requirements/apt.txt)
if ((${#missing_apt[@]})); then
  echo "setup: installing Debian packages: ${missing_apt[*]}"
  apt_get=(apt-get); [[ $(id -u) -eq 0 ]] || apt_get=(sudo apt-get)
  "${apt_get[@]}" update -qq
  DEBIAN_FRONTEND=noninteractive "${apt_get[@]}" install -y -qq "${missing_apt[@]}" >/dev/null
fi

if [[ -f "$stamp" && "$(cat "$stamp")" == "$want" && -x "$venv/bin/python" ]]; then
  echo "setup: .venv is up to date"
  exit 0
fi

python_bin=$(command -v "python${PYTHON_VERSION}" || command -v python3 || true)
if [[ -z "$python_bin" ]] || ! "$python_bin" -c "import sys; sys.exit(sys.version_info[:2] != tuple(map(int, '${PYTHON_VERSION}'.split('.'))))"; then
  echo "setup: Python ${PYTHON_VERSION} is required (found: ${python_bin:-none})" >&2
  exit 1
fi

if ! "$venv/bin/python" -c "import sys" 2>/dev/null; then
  echo "setup: creating .venv with $("$python_bin" --version)"
  rm -rf "$venv"
  "$python_bin" -m venv "$venv"
else
  echo "setup: updating .venv to the pinned requirements"
fi
"$venv/bin/python" -m pip install --quiet --disable-pip-version-check -c requirements/constraints.txt pip
"$venv/bin/python" -m pip install --quiet --disable-pip-version-check -r requirements/dev.txt
if [[ -f services/pyproject.toml ]]; then
  "$venv/bin/python" -m pip install --quiet --disable-pip-version-check --no-deps --no-build-isolation -e services
fi
echo "$want" > "$stamp"
echo "setup: .venv ready ($("$venv/bin/ansible" --version | head -1))"
