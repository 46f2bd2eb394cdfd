// Package lua holds ThrottleKit's Redis scripts and their manifest: the one
// source that the server, the Go direct door and (copied into its wheel)
// the Python client all run.
package lua

import "embed"

// FS holds every script and manifest.json.
//
//go:embed *.lua manifest.json
var FS embed.FS
