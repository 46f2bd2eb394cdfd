package ratelog

import (
	"bytes"
	"log/slog"
	"strings"
	"testing"
	"time"
)

func TestLimiter(t *testing.T) {
	var buf bytes.Buffer
	l := New(slog.New(slog.NewTextHandler(&buf, nil)), time.Second)
	clock := time.Unix(1000, 0)
	l.now = func() time.Time { return clock }

	for i := 0; i < 2400; i++ {
		l.Warn("store failed", "i", i)
	}
	l.Warn("another message")
	clock = clock.Add(time.Second)
	l.Warn("store failed", "i", "last")

	lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
	if len(lines) != 3 {
		t.Fatalf("got %d lines, want 3 (first, another, one after the interval):\n%s", len(lines), buf.String())
	}
	if !strings.Contains(lines[0], "i=0") || strings.Contains(lines[0], "suppressed") {
		t.Errorf("first line = %q", lines[0])
	}
	if !strings.Contains(lines[1], "another message") {
		t.Errorf("a different message must not be held back: %q", lines[1])
	}
	if !strings.Contains(lines[2], "suppressed=2399") {
		t.Errorf("the line after the interval must count the 2399 held back: %q", lines[2])
	}
}
