package services

import (
	"bytes"
	"io"
	"os"
	"strings"
	"testing"
)

// RunExample runs an Example function of a store package against the real
// server its test started (Example functions cannot start one themselves)
// and fails t unless it prints want. It captures the process's stdout
// while example runs, as `go test` does for an Example with an Output
// comment.
func RunExample(t *testing.T, example func(), want string) {
	t.Helper()
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout := os.Stdout
	os.Stdout = w
	done := make(chan string)
	go func() {
		var b bytes.Buffer
		_, _ = io.Copy(&b, r)
		done <- b.String()
	}()
	func() {
		defer func() { os.Stdout = stdout; _ = w.Close() }()
		example()
	}()
	if got := <-done; strings.TrimSpace(got) != strings.TrimSpace(want) {
		t.Fatalf("the example printed:\n%s\nwant:\n%s", got, want)
	}
}
