// Package keyspace is how ThrottleKit names state in a shared store: the one
// place keys are joined, so that the server's stores, the direct doors and
// every other client address the same key for the same (prefix, key).
//
// A key is "prefix:key" ("key" alone when the prefix is empty), with any
// store-wide prefix joined in front the same way. A second axis of a policy
// (its fleet budget, its distributed concurrency) lives under the policy's
// prefix with an axis suffix, "prefix#axis", whose keys can never be those of
// the rate axis: every rate key continues "prefix:", never "prefix#".
package keyspace

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"strings"
)

// Sep joins a prefix to what follows it.
const Sep = ":"

// AxisSep joins a policy's prefix to the name of one of its other axes.
const AxisSep = "#"

// Join returns prefix:key, or key when prefix is empty.
func Join(prefix, key string) string {
	if prefix == "" {
		return key
	}
	return prefix + Sep + key
}

// Axis returns the prefix of a policy's axis other than its rate axis.
func Axis(prefix, axis string) string { return prefix + AxisSep + axis }

// Overlap reports whether some key under prefix a is also a key under prefix
// b: when they are equal, when one is empty (the bare key space holds every
// key), or when one extends the other past a separator ("prod" holds
// "prod:api"'s keys: "prod" + ":" + "api:alice" is "prod:api" + ":" + "alice").
func Overlap(a, b string) bool {
	if a == "" || b == "" {
		return true
	}
	return strings.HasPrefix(a+Sep, b+Sep) || strings.HasPrefix(b+Sep, a+Sep)
}

// Hash is the keyed hash a policy with keyHash: sha256 stores instead of a
// key: the hex HMAC-SHA256 of key under secret. Every door that shares
// such a policy's budget (the server, the direct Redis doors of both SDKs)
// must hash with the same secret.
func Hash(secret []byte, key string) string {
	m := hmac.New(sha256.New, secret)
	m.Write([]byte(key))
	return hex.EncodeToString(m.Sum(nil))
}
