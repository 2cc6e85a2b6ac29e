//go:build tools

// Package tools pins the metrics-server command hack/cluster/build.sh builds.
package tools

import _ "sigs.k8s.io/metrics-server/cmd/metrics-server"
