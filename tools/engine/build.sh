#!/usr/bin/env bash
# Builds the tools the engine tests run (tests/engine/), from Go modules alone, into a cache
# outside the checkout keyed by their versions:
#   pulumi                              the Pulumi CLI          (pulumi/go.mod)
#   pulumi-language-yaml                the YAML language host  (pulumi-yaml/go.mod), for local projects
#   pulumi-resource-kubernetes          the Kubernetes provider (kubernetes-provider/go.mod)
#   pulumi-language-python              a stand-in Python host  (python-host/go.mod, main.go), test-only
#   etcd                                etcd                    (etcd/go.mod)
#   kube-apiserver, kube-controller-manager                     (kubernetes/go.mod)
#   keda-operator, keda-adapter         KEDA's operator and metrics API server (keda/go.mod)
# Each module's go.mod/go.sum here pins exactly what is built; a tool is rebuilt only when its
# module files, the Go version or its build flags change, so a second run builds nothing.
#
#   tools/engine/build.sh             build what is missing, one line per tool with its time
#   tools/engine/build.sh --bin-dir   print the bin directory of these versions (builds nothing)
#
# IM_PLATFORM_ENGINE_CACHE moves the cache (default ~/.cache/im-platform/engine).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)

# The versions, read from the modules' go.mod files (the single source of truth).
modversion() {  # modversion DIR MODULE: the version DIR/go.mod requires of MODULE
    local v
    v=$(awk -v m="$2" '$1 == m && $2 ~ /^v/ {print $2; exit}' "$here/$1/go.mod")
    [[ -n "$v" ]] || { echo "engine: $1/go.mod requires no $2" >&2; exit 1; }
    echo "$v"
}
pulumi_version=$(modversion pulumi github.com/pulumi/pulumi/pkg/v3)
yaml_version=$(modversion pulumi-yaml github.com/pulumi/pulumi-yaml)
provider_module_version=$(modversion kubernetes-provider github.com/pulumi/pulumi-kubernetes/provider/v4)
kubernetes_version=$(modversion kubernetes k8s.io/kubernetes)
etcd_version=$(modversion etcd go.etcd.io/etcd/server/v3)
keda_version=$(modversion keda github.com/kedacore/keda/v2)
# The provider module is untagged: its pseudo-version names a commit after the 4.24.0 release
# (its CHANGELOG there is "4.24.0" plus unreleased fixes), so it reports that, with the commit.
provider_commit=${provider_module_version##*-}
provider_version=4.24.1-dev+$provider_commit
go_version=$(go env GOVERSION)

key="pulumi-${pulumi_version#v}_kubernetes-${kubernetes_version#v}_etcd-${etcd_version#v}"
key+="_provider-${provider_commit}_${go_version}"
cache=${IM_PLATFORM_ENGINE_CACHE:-$HOME/.cache/im-platform/engine}/$key
bin=$cache/bin
if [[ "${1:-}" == --bin-dir ]]; then
    echo "$bin"
    exit 0
fi
mkdir -p "$bin" "$cache/stamps" "$cache/src"

# Nothing here may reach anything but the Go module proxy; builds share the two cores politely.
export GOFLAGS=-mod=readonly GOTOOLCHAIN=local
build_flags=(-p 2 -trimpath)
started=$SECONDS

stamp_of() {  # stamp_of NAME FLAGS...: what the tool's binary was built from
    { echo "$go_version"; printf '%s\n' "$@"; cat "$here/$1/go.mod" "$here/$1/go.sum"; } \
        | sha256sum | cut -d' ' -f1
}

build() {  # build TOOL MODULE_DIR PACKAGE_DIR PACKAGE LDFLAGS: one line with its time
    local tool=$1 dir=$2 pkgdir=$3 pkg=$4 ldflags=$5 step=$SECONDS stamp
    stamp=$(stamp_of "$dir" "$pkg" "$ldflags" "${build_flags[@]}")
    printf 'engine: %-32s ' "$tool" >&2
    if [[ -x "$bin/$tool" && "$(cat "$cache/stamps/$tool" 2>/dev/null)" == "$stamp" ]]; then
        echo "up to date" >&2
        return
    fi
    if ! (cd "$pkgdir" && nice -n 10 go build "${build_flags[@]}" -ldflags "$ldflags" \
            -o "$bin/$tool.new" "$pkg"); then
        echo "engine: $tool failed after $((SECONDS - step)) s (the lines above say why)" >&2
        exit 1
    fi
    mv "$bin/$tool.new" "$bin/$tool"
    echo "$stamp" > "$cache/stamps/$tool"
    echo "built in $((SECONDS - step)) s" >&2
}

echo "engine: Go $go_version, into $bin" >&2

build pulumi pulumi "$here/pulumi" github.com/pulumi/pulumi/pkg/v3/cmd/pulumi \
    "-s -w -X github.com/pulumi/pulumi/sdk/v3/go/common/version.Version=$pulumi_version"

# The provider's main package embeds its schema as schema-embed.json, which its own go:generate
# step (generate.go) writes from the schema.json beside it; the module zip has only schema.json.
# So the main package (one file) is built from a copy under the cache, beside the embedded files
# that generate.go writes there, in a module with the same go.mod/go.sum.
provider_src=$cache/src/kubernetes-provider
provider_pkg=$(cd "$here/kubernetes-provider" \
    && go list -e -f '{{.Dir}}' github.com/pulumi/pulumi-kubernetes/provider/v4/cmd/pulumi-resource-kubernetes)
provider_stamp=$(stamp_of kubernetes-provider "$provider_version")
if [[ "$(cat "$provider_src/.stamp" 2>/dev/null)" != "$provider_stamp" ]]; then
    step=$SECONDS
    printf 'engine: %-32s ' "kubernetes provider schema" >&2
    rm -rf "$provider_src" && mkdir -p "$provider_src"
    sed 's|^module .*|module im-platform/engine/kubernetes-provider|' \
        "$here/kubernetes-provider/go.mod" > "$provider_src/go.mod"
    cp "$here/kubernetes-provider/go.sum" "$provider_src/go.sum"
    cp "$provider_pkg/main.go" "$provider_pkg/generate.go" "$provider_pkg/schema.json" \
        "$provider_pkg/terraform-mapping.json" "$provider_src/"
    chmod u+w "$provider_src"/*
    if ! (cd "$provider_src" && nice -n 10 go build "${build_flags[@]}" -o generate generate.go \
            && VERSION=$provider_version ./generate); then
        echo "engine: the provider's schema failed after $((SECONDS - step)) s" >&2
        exit 1
    fi
    rm -f "$provider_src/generate" "$provider_src/schema.json" "$provider_src/terraform-mapping.json"
    echo "$provider_stamp" > "$provider_src/.stamp"
    echo "made in $((SECONDS - step)) s" >&2
fi
build pulumi-resource-kubernetes kubernetes-provider "$provider_src" . \
    "-s -w -X github.com/pulumi/pulumi-kubernetes/provider/v4/pkg/version.Version=$provider_version"

build etcd etcd "$here/etcd" go.etcd.io/etcd/server/v3 "-s -w"

minor=${kubernetes_version#v1.}
minor=${minor%%.*}
kube_ldflags="-s -w"
# The build date comes from the module's .info file: fetch it first, or a cold run stamps the
# binaries without it and the next run builds them again.
(cd "$here/kubernetes" && go mod download k8s.io/kubernetes)
for kv in gitVersion="$kubernetes_version" gitMajor=1 gitMinor="$minor" gitTreeState=clean \
        buildDate="$(sed -n 's/.*"Time":"\([^"]*\)".*/\1/p' \
            "$(go env GOMODCACHE)/cache/download/k8s.io/kubernetes/@v/$kubernetes_version.info" \
            2>/dev/null || true)"; do
    [[ "$kv" == *= ]] && continue
    kube_ldflags+=" -X k8s.io/component-base/version.$kv"
done
build kube-apiserver kubernetes "$here/kubernetes" k8s.io/kubernetes/cmd/kube-apiserver "$kube_ldflags"
build kube-controller-manager kubernetes "$here/kubernetes" \
    k8s.io/kubernetes/cmd/kube-controller-manager "$kube_ldflags"
# KEDA's operator and metrics API server, for the scaling engine tests. KEDA's own go.mod has a
# replace and an exclude that do not reach a module requiring it, so keda/go.mod repeats them.
# The cache's name leaves KEDA's version out (a new KEDA would rebuild every tool): its stamp rebuilds it alone.
keda_ldflags="-s -w -X github.com/kedacore/keda/v2/version.Version=${keda_version#v}"
build keda-operator keda "$here/keda" github.com/kedacore/keda/v2/cmd/operator "$keda_ldflags"
build keda-adapter keda "$here/keda" github.com/kedacore/keda/v2/cmd/adapter "$keda_ldflags"

# The Python language host's Go module is not served, so `pulumi up` of a local project (rather
# than an inline program) runs a YAML one through this host. Its own module: pulumi-yaml does not
# compile against the CLI's newer pkg/v3.
build pulumi-language-yaml pulumi-yaml "$here/pulumi-yaml" github.com/pulumi/pulumi-yaml/cmd/pulumi-language-yaml \
    "-s -w -X github.com/pulumi/pulumi-yaml/pkg/version.Version=$yaml_version"

# The Python language host's own Go module is not served: a stand-in written here on the CLI's sdk/v3
# (python-host/main.go says what it does and does not), beside the SDK's program runner from that module.
build pulumi-language-python python-host "$here/python-host" . \
    "-s -w -X main.version=$(modversion python-host github.com/pulumi/pulumi/sdk/v3 | cut -c2-)+im-platform.stand-in"
install -m 0755 "$(cd "$here/python-host" && go list -m -f '{{.Dir}}' github.com/pulumi/pulumi/sdk/v3)/python/cmd/pulumi-language-python-exec" \
    "$bin/pulumi-language-python-exec"
rm -f "$bin/pulumi-analyzer-policy-python"  # the policy-pack shim of earlier builds; this CLI no longer calls it

echo "engine: done in $((SECONDS - started)) s ($bin)" >&2
