// Package ratelog writes a log line that may repeat on every request (a
// store failing, a corrupt key) at most once per interval, saying how many
// it held back, so an outage cannot flood the log or slow the decisions that
// report it.
package ratelog

import (
	"context"
	"log"
	"log/slog"
	"strings"
	"sync"
	"time"
)

// DefaultEvery is the interval a Limiter made with 0 uses.
const DefaultEvery = 10 * time.Second

// Limiter logs each distinct message at most once per interval. Safe for
// concurrent use.
type Limiter struct {
	log   *slog.Logger
	every time.Duration
	now   func() time.Time

	mu    sync.Mutex
	lines map[string]*line // by message: messages are constants, so few
}

type line struct {
	next time.Time
	held int
}

// New returns a Limiter writing to log (slog.Default() when nil) at most once
// per every (DefaultEvery when 0) for each message.
func New(log *slog.Logger, every time.Duration) *Limiter {
	if log == nil {
		log = slog.Default()
	}
	if every <= 0 {
		every = DefaultEvery
	}
	return &Limiter{log: log, every: every, now: time.Now, lines: map[string]*line{}}
}

// Warn logs msg with args at WARN level unless the same message was logged
// less than an interval ago; the next line written reports, as "suppressed",
// how many were held back in between.
func (l *Limiter) Warn(msg string, args ...any) { l.emit(slog.LevelWarn, msg, args) }

// Info is Warn at INFO level.
func (l *Limiter) Info(msg string, args ...any) { l.emit(slog.LevelInfo, msg, args) }

// Error is Warn at ERROR level.
func (l *Limiter) Error(msg string, args ...any) { l.emit(slog.LevelError, msg, args) }

func (l *Limiter) emit(level slog.Level, msg string, args []any) {
	now := l.now()
	l.mu.Lock()
	ln := l.lines[msg]
	if ln == nil {
		ln = &line{}
		l.lines[msg] = ln
	}
	if now.Before(ln.next) {
		ln.held++
		l.mu.Unlock()
		return
	}
	held := ln.held
	ln.held, ln.next = 0, now.Add(l.every)
	l.mu.Unlock()
	if held > 0 {
		args = append(args, "suppressed", held)
	}
	l.log.Log(context.Background(), level, msg, args...)
}

// StdLog is a *log.Logger (for net/http's ErrorLog) whose every line is a
// Warn of msg through l, the line itself as "detail": a flood of failed
// handshakes or bad requests is one log line per interval, with the count
// of those held back.
func StdLog(l *Limiter, msg string) *log.Logger {
	return log.New(stdWriter{l, msg}, "", 0)
}

type stdWriter struct {
	l   *Limiter
	msg string
}

func (w stdWriter) Write(p []byte) (int, error) {
	w.l.Warn(w.msg, "detail", strings.TrimSpace(string(p)))
	return len(p), nil
}
