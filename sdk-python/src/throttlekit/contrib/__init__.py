"""Framework adapters: each answers a denied request with 429 and the rate-limit headers, lets
requests through when the service is unreachable (fail open) unless told otherwise, and keys on the
connecting peer's address unless given a key function. Forwarded-for headers are never trusted by
default: any client can forge them."""
