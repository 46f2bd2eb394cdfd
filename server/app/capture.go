package app

import (
	"context"
	"fmt"
	"log/slog"

	"github.com/throttlekit/throttlekit-go/server/capture"
	"github.com/throttlekit/throttlekit-go/server/config"
)

// openVault opens the capture directory a capture block names, under its
// key (read from the environment or a file).
func openVault(c *config.Capture) (*capture.Vault, error) {
	keyText, err := capture.ReadSecret(c.EncryptionKey)
	if err != nil {
		return nil, err
	}
	key, err := capture.ParseKey(keyText)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", c.EncryptionKey.Field, err)
	}
	return capture.NewVault(c.Dir, key)
}

// startCapture starts recording what cfg's capture block names (nil, and
// a no-op stop, without one). Every secret it names is read now — a
// missing one stops the server, as a bad file does — and stop flushes
// what is recorded once more.
func startCapture(cfg *config.Config, log *slog.Logger) (*capture.Recorder, func(), error) {
	c := cfg.Capture
	if c == nil {
		return nil, func() {}, nil
	}
	fail := func(err error) (*capture.Recorder, func(), error) {
		return nil, nil, fmt.Errorf("%s: %w", cfg.Path, err)
	}
	vault, err := openVault(c)
	if err != nil {
		return fail(err)
	}
	if _, err := capture.ReadSecret(c.Operator); err != nil {
		return fail(err)
	}
	var secret []byte
	if c.Redaction == config.RedactHMAC {
		s, err := capture.ReadSecret(c.RedactionSecret)
		if err != nil {
			return fail(err)
		}
		secret = []byte(s)
	}
	rec, err := capture.New(capture.Options{Config: c, HMACSecret: secret, Vault: vault, Log: log})
	if err != nil {
		return fail(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); rec.Run(ctx) }()
	log.Info("capturing decisions", "policies", c.Policies, "dir", c.Dir, "redaction", c.Redaction)
	return rec, func() { cancel(); <-done }, nil
}

// captureStorage describes what of a capture block only a restart changes
// (all but its policies).
func captureStorage(c *config.Capture) string {
	if c == nil {
		return "none"
	}
	d := *c
	d.Policies, d.Line = nil, 0
	return fmt.Sprintf("%+v", d)
}
