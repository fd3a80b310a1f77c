//go:build tools

// Package tools pins what the provider's own schema step (cmd/pulumi-resource-kubernetes/generate.go,
// run by ../build.sh) imports, so go.sum covers it.
package tools

import _ "github.com/pulumi/pulumi/pkg/v3/codegen/schema"
