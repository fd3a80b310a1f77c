#!/usr/bin/env bash
# Installs everything the program, the offline plan and the tests need, in three virtual
# environments (the policy pack and checkov pin versions the main one cannot share):
#   venv/          the program and its tests   (requirements-dev.txt; Pulumi.yaml uses ./venv)
#   policy/venv/   the Pulumi policy pack      (policy/requirements.txt: protobuf 5 for pulumi-policy)
#   venv-checks/   checkov, for the manifests  (requirements-checkov.txt: packaging<24)
# Safe to run again: existing environments are brought up to date.
#
#   ./setup.sh --engine   also builds the engine tests' tools from Go modules (tools/engine/build.sh:
#                         the Pulumi CLI, the Kubernetes provider, etcd, kube-apiserver; needs Go)
set -euo pipefail
cd "$(dirname "$0")"

engine=false
for arg in "$@"; do
    case $arg in
        --engine) engine=true ;;
        *) echo "setup: unknown option $arg (usage: ./setup.sh [--engine])" >&2; exit 2 ;;
    esac
done

python=${PYTHON:-python3}
pip_quiet=(--quiet --disable-pip-version-check)
started=$SECONDS

# First, before anything is made: an older Python fails deep inside pip with an unrelated error.
if ! version=$("$python" -c 'import sys; print("%d.%d.%d" % sys.version_info[:3])' 2>/dev/null); then
    echo "setup: $python not found: install Python 3.11 or newer, or name it with PYTHON=/path/to/python3.11" >&2
    exit 1
fi
IFS=. read -r major minor _ <<< "$version"
if (( major < 3 || (major == 3 && minor < 11) )); then
    echo "setup: Python 3.11 or newer is needed; $python is $version (name another with PYTHON=python3.11)" >&2
    exit 1
fi
echo "setup: Python $version ($python)" >&2

make_env() {  # make_env DIR REQUIREMENTS: one line per environment, with its time
    local dir=$1 requirements=$2 step=$SECONDS
    printf 'setup: %s <- %s ... ' "$dir" "$requirements" >&2
    if ! { [[ -x "$dir/bin/python" ]] || "$python" -m venv "$dir"; } \
            || ! "$dir/bin/pip" install "${pip_quiet[@]}" -r "$requirements"; then
        echo "failed after $((SECONDS - step)) s (the lines above say why)" >&2
        exit 1
    fi
    echo "done in $((SECONDS - step)) s" >&2
}

make_env venv requirements-dev.txt
# The project itself, editable and without dependencies (requirements-dev.txt pinned them): its
# console script venv/bin/im-platform runs `infra.cli` from this checkout.
step=$SECONDS
printf 'setup: venv <- this project (venv/bin/im-platform) ... ' >&2
if ! venv/bin/pip install "${pip_quiet[@]}" --no-deps -e .; then
    echo "failed after $((SECONDS - step)) s (the lines above say why)" >&2
    exit 1
fi
echo "done in $((SECONDS - step)) s" >&2
make_env policy/venv policy/requirements.txt
make_env venv-checks requirements-checkov.txt
# KEDA's CRDs, which the tests hold every ScaledObject to, from its Go module (read from the module
# cache, never copied into the checkout); the chart the program installs is the same version.
if command -v go >/dev/null; then
    GOFLAGS=-mod=mod go mod download github.com/kedacore/keda/v2@v2.21.0 \
        || echo "setup: go mod download github.com/kedacore/keda/v2@v2.21.0 failed (tests/test_keda.py needs it)" >&2
else
    echo "setup: no go on PATH: tests/test_keda.py skips its CRD checks (fails under CI=true)" >&2
fi
echo '*' > venv-checks/.gitignore
if [[ $engine == true ]]; then
    step=$SECONDS
    echo "setup: engine tools (tools/engine/build.sh) ..." >&2
    if ! bash tools/engine/build.sh; then
        echo "setup: engine tools failed after $((SECONDS - step)) s (the lines above say why)" >&2
        exit 1
    fi
fi
echo "setup: done in $((SECONDS - started)) s" >&2
