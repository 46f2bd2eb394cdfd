// Package engine is ThrottleKit's decision engine: pure functions of
// (strategy, state, now, cost) with no I/O and no clock of its own.
//
// Every store applies this engine (or, on Redis, the Lua scripts that mirror it
// operation for operation), so a decision is the same five integers whichever
// store or door produced it. The arithmetic is IEEE-754 double, done in the
// order the ThrottleKit semantics write it; every product that feeds an
// addition or subtraction is wrapped in an explicit float64 conversion, which
// forbids the compiler from fusing it into an FMA (Lua never fuses, and the
// results are compared bit for bit).
//
// Time is integer epoch milliseconds, passed in by the caller.
//
// Build strategies with their constructors (NewGCRA, NewTokenBucket, ...),
// which validate the options: the zero value of a strategy type has no
// limit or period and is not usable (its arithmetic divides by zero). The
// zero State is an absent key, ready to use.
package engine
