// Package door serves the RateLimiter decision door of the ThrottleKit
// wire (Check, CheckMany, Peek, Forecast, Debit, Admit, Release,
// Heartbeat). A RateLimiter is one generation of the policy file: it
// validates requests, resolves policies, applies the store, follows the
// fail mode on a store outage and reports to telemetry; Current holds the
// generation every door of the server reads. Refusals are built by
// wireerr, which the other doors share.
package door
