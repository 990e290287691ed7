# Sourced by the other scripts: builds (or reuses) a virtual environment with one Airflow release,
# this project in editable mode and its test tools, from the package registries only.
#
# The releases tested: the lowest one pyproject.toml admits (the 2.x line), the lowest 3.x and the
# newest, each on a Python it supports. Airflow pins its dependencies with constraint files that live
# outside the package registries, so an older release is installed with uv's --exclude-newer at its
# release date instead: the dependency versions a user installing it then would have got. The project
# is installed on top without that limit, as a user adding the provider to that Airflow would.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENVS="${CHATAPI_VENVS:-$ROOT/.venvs}"
PYTHON="${PYTHON:-python3}"

# release, the Python to test it on, the day after its release (-: install today's dependencies), and
# packages to install beside it (-: none). Airflow 3.0 and 3.1 build a hook's connection form with
# WTForms from the FAB provider, which 2.x always has and 3.2+ no longer needs.
RELEASES=(
    "2.11.2 3.11 2026-03-15 -"
    "3.0.6 3.12 2025-08-30 apache-airflow-providers-fab"
    "3.3.2 3.13 - -"
)
LOWEST_AIRFLOW="2.11.2"
NEWEST_AIRFLOW="3.3.2"

declared_floor="$(sed -n 's/.*"apache-airflow>=\([0-9.]*\),.*/\1/p' "$ROOT/pyproject.toml")"
if [ "${declared_floor%.0}" != "${LOWEST_AIRFLOW%.*}" ]; then
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

# release_field AIRFLOW_VERSION N -> field N (1: version, 2: Python, 3: as of, 4: beside) of its RELEASES row.
release_field() {
    local row fields
    for row in "${RELEASES[@]}"; do
        read -r -a fields <<< "$row"
        if [ "${fields[0]}" = "$1" ]; then
            echo "${fields[$2 - 1]}"
            return
        fi
    done
    echo "Airflow $1 is not one of the tested releases: ${RELEASES[*]}" >&2
    return 1
}

# python_for AIRFLOW_VERSION -> the interpreter to test that release on: its Python where the machine
# has it (on PATH or under pyenv), else $PYTHON.
python_for() {
    local wanted candidate
    wanted="$(release_field "$1" 2)"
    for candidate in "python$wanted" "$(pyenv root 2>/dev/null)"/versions/"$wanted".*/bin/python3; do
        if "$candidate" -c "import sys; sys.exit(sys.version_info[:2] != (${wanted/./, }))" 2>/dev/null; then
            echo "$candidate"
            return
        fi
    done
    echo "Python $wanted not found: testing Airflow $1 on $PYTHON instead" >&2
    echo "$PYTHON"
}

# airflow_venv VERSION -> prints the venv's path, building it when its inputs changed.
airflow_venv() {
    local version="$1" venv="$VENVS/airflow-$1" python as_of beside uv stamp extras
    python="$(python_for "$version")"
    as_of="$(release_field "$version" 3)"
    beside="$(release_field "$version" 4)"
    stamp="$version $python $as_of $beside $(sha256sum "$ROOT/pyproject.toml" | cut -c1-16)"
    if [ -f "$venv/.chatapi-stamp" ] && [ "$(cat "$venv/.chatapi-stamp")" = "$stamp" ]; then
        echo "$venv"
        return
    fi
    uv="$(uv_bin)"
    rm -rf "$venv"
    "$uv" venv --quiet --python "$python" "$venv" >&2
    local first=("apache-airflow==$version")
    [ "$beside" = "-" ] || first+=("$beside")
    if [ "$as_of" != "-" ]; then
        VIRTUAL_ENV="$venv" "$uv" pip install --quiet "${first[@]}" --exclude-newer "$as_of" >&2
    else
        VIRTUAL_ENV="$venv" "$uv" pip install --quiet "${first[@]}" >&2
    fi
    # The official 1msg and WhatsApp clients talk to the stand-in, not to Airflow: one release runs them,
    # the newest, and the others skip those tests (pytest.importorskip).
    extras="test"
    [ "$version" = "$NEWEST_AIRFLOW" ] && extras="test,test-clients"
    VIRTUAL_ENV="$venv" "$uv" pip install --quiet "apache-airflow==$version" -e "$ROOT[$extras]" >&2
    echo "$stamp" > "$venv/.chatapi-stamp"
    echo "$venv"
}
