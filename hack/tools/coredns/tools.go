//go:build tools

// Package tools pins the CoreDNS command hack/cluster/build.sh builds.
package tools

import _ "github.com/coredns/coredns"
