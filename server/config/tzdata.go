package config

// The time zones of quota policies come with the binary: a server never
// depends on the host's zone files (a scratch image has none).
import _ "time/tzdata"
