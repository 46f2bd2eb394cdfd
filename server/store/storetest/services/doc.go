// Package services starts the stores' real servers for tests — redis-server
// (single, cluster, Sentinel), PostgreSQL from Debian's packages and moto
// for DynamoDB — each on a free loopback port, stopped when the test ends,
// or the endpoint an environment variable names (THROTTLEKIT_REDIS_URL,
// THROTTLEKIT_POSTGRES_URL, THROTTLEKIT_DYNAMODB_ENDPOINT). A server that is
// not installed fails the test: a required store is never skipped quietly.
// The store packages' own tests and the conformance suite share it.
package services
