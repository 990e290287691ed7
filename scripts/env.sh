# Sourced by the other scripts: builds (or reuses) a virtual environment with one Airflow release,
# this project in editable mode and its test tools, from the package registries only.
#
# The releases tested: the lowest one pyproject.toml admits and the newest. Airflow pins its
# dependencies with constraint files that live outside the package registries, so the lowest release
# is installed with uv's --exclude-newer at its release date instead: the dependency versions a user
# installing it then would have got.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENVS="${CHATAPI_VENVS:-$ROOT/.venvs}"
PYTHON="${PYTHON:-python3}"
LOWEST_PYTHON="3.10"  # the lowest Airflow release is tested on the lowest Python, where the machine has it
LOWEST_AIRFLOW="3.1.0"
LOWEST_AIRFLOW_RELEASED="2025-09-30"
NEWEST_AIRFLOW="3.3.2"

declared_floor="$(sed -n 's/.*"apache-airflow>=\([0-9.]*\),.*/\1/p' "$ROOT/pyproject.toml")"
if [ "$declared_floor" != "$LOWEST_AIRFLOW" ]; then
    echo "pyproject.toml admits apache-airflow>=$declared_floor but scripts/env.sh tests $LOWEST_AIRFLOW" >&2
    exit 1
fi

uv_bin() {
    if [ ! -x "$VENVS/uv/bin/uv" ]; then
        "$PYTHON" -m venv "$VENVS/uv"
        "$VENVS/uv/bin/python" -m pip install --quiet --disable-pip-version-check uv
    fi
    echo "$VENVS/uv/bin/uv"
}

# python_for AIRFLOW_VERSION -> the interpreter to test that release on.
python_for() {
    local candidate
    if [ "$1" = "$LOWEST_AIRFLOW" ]; then
        for candidate in "python$LOWEST_PYTHON" "$(pyenv root 2>/dev/null)"/versions/"$LOWEST_PYTHON".*/bin/python3; do
            if "$candidate" -c "import sys; sys.exit(sys.version_info[:2] != (${LOWEST_PYTHON/./, }))" 2>/dev/null; then
                echo "$candidate"
                return
            fi
        done
        echo "Python $LOWEST_PYTHON not found: testing Airflow $1 on $PYTHON instead" >&2
    fi
    echo "$PYTHON"
}

# airflow_venv VERSION -> prints the venv's path, building it when its inputs changed.
airflow_venv() {
    local version="$1" venv="$VENVS/airflow-$1" python uv stamp
    python="$(python_for "$version")"
    stamp="$version $python $(sha256sum "$ROOT/pyproject.toml" | cut -c1-16)"
    if [ -f "$venv/.chatapi-stamp" ] && [ "$(cat "$venv/.chatapi-stamp")" = "$stamp" ]; then
        echo "$venv"
        return
    fi
    uv="$(uv_bin)"
    rm -rf "$venv"
    "$uv" venv --quiet --python "$python" "$venv" >&2
    if [ "$version" = "$LOWEST_AIRFLOW" ]; then
        VIRTUAL_ENV="$venv" "$uv" pip install --quiet "apache-airflow==$version" \
            --exclude-newer "$LOWEST_AIRFLOW_RELEASED" >&2
    fi
    VIRTUAL_ENV="$venv" "$uv" pip install --quiet "apache-airflow==$version" -e "$ROOT[test]" >&2
    echo "$stamp" > "$venv/.chatapi-stamp"
    echo "$venv"
}
