// Package door serves the ThrottleKit wire: the RateLimiter decision door
// (and, as their issues land, Monitor and Fleet). It validates requests,
// resolves policies, applies the store, follows the fail mode on a store
// outage, and maps every error to its gRPC status in one place (status.go).
package door
