// Package auth is how the server knows who may talk to it: TLS and mTLS
// for the gRPC port, and the doors' shared secrets, checked in constant
// time before a call reaches a door.
package auth
