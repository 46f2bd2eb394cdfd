// Package conformance replays the decision vectors through every store and
// door over real sockets, and pins the server's wire behaviour: error codes,
// health, reflection, startup, shutdown and policy-file errors.
package conformance
