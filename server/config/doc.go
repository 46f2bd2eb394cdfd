// Package config loads ThrottleKit policy files (YAML, or JSON when the first
// non-space character is '{'). Every error names the file, the line and the
// offending field, unknown keys are rejected with the closest valid key
// suggested, and no input makes the loader panic.
package config
