package main

import (
	"context"
	"net"
	"net/http"
	"regexp"
	"testing"
	"time"

	"github.com/throttlekit/throttlekit-go/internal/testserver"
	"github.com/throttlekit/throttlekit-go/sdk-go/throttlekit"
)

// TestExampleServesAndLimits runs the example against a real server on
// the example policy file: api allows 5 per hour, so the sixth GET is 429.
func TestExampleServesAndLimits(t *testing.T) {
	srv := testserver.Start(t, testserver.Binary(t, false), "--config", "../policies.yaml")
	client, err := throttlekit.NewClient(srv.Addr)
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- serve(ctx, client, "api", time.Hour, l) }()

	url := "http://" + l.Addr().String() + "/"
	for i := 1; i <= 6; i++ {
		resp, err := http.Get(url)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		want := http.StatusOK
		if i == 6 {
			want = http.StatusTooManyRequests
		}
		if resp.StatusCode != want {
			t.Fatalf("GET %d: %d, want %d", i, resp.StatusCode, want)
		}
		if got := resp.Header.Get("RateLimit-Policy"); got != `"api";q=5;w=3600` {
			t.Errorf("GET %d: RateLimit-Policy %q", i, got)
		}
		remaining := []string{"4", "3", "2", "1", "0", "0"}[i-1]
		if re := `^"api";r=` + remaining + `;t=\d+$`; !regexp.MustCompile(re).MatchString(resp.Header.Get("RateLimit")) {
			t.Errorf("GET %d: RateLimit %q does not match %s", i, resp.Header.Get("RateLimit"), re)
		}
		if (i == 6) != (resp.Header.Get("Retry-After") != "") {
			t.Errorf("GET %d: Retry-After %q", i, resp.Header.Get("Retry-After"))
		}
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}
