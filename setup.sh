#!/usr/bin/env bash
# Installs everything the program, the offline plan and the tests need, in three virtual
# environments (the policy pack and checkov pin versions the main one cannot share):
#   venv/          the program and its tests   (requirements-dev.txt; Pulumi.yaml uses ./venv)
#   policy/venv/   the Pulumi policy pack      (policy/requirements.txt: protobuf 5 for pulumi-policy)
#   venv-checks/   checkov, for the manifests  (requirements-checkov.txt: packaging<24)
# Safe to run again: existing environments are brought up to date.
set -euo pipefail
cd "$(dirname "$0")"

python=${PYTHON:-python3}
pip_quiet=(--quiet --disable-pip-version-check)

make_env() {  # make_env DIR REQUIREMENTS
    local dir=$1 requirements=$2
    echo "setup: $dir <- $requirements" >&2
    [[ -x "$dir/bin/python" ]] || "$python" -m venv "$dir"
    "$dir/bin/pip" install "${pip_quiet[@]}" -r "$requirements"
}

make_env venv requirements-dev.txt
make_env policy/venv policy/requirements.txt
make_env venv-checks requirements-checkov.txt
echo '*' > venv-checks/.gitignore
echo "setup: done" >&2
