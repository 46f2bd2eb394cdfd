package harness

import (
	"io"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"
)

// Metric reads one sample (e.g. go_goroutines, or a name with its labels
// as the page writes them) from a Prometheus /metrics endpoint.
func Metric(t testing.TB, addr, name string) float64 {
	t.Helper()
	for line := range strings.SplitSeq(Scrape(t, addr), "\n") {
		if rest, ok := strings.CutPrefix(line, name+" "); ok {
			v, err := strconv.ParseFloat(strings.TrimSpace(rest), 64)
			if err != nil {
				t.Fatal(err)
			}
			return v
		}
	}
	t.Fatalf("metric %s not found at %s", name, addr)
	return 0
}

// Scrape reads a Prometheus /metrics page whole.
func Scrape(t testing.TB, addr string) string {
	t.Helper()
	c := http.Client{Timeout: 5 * time.Second}
	resp, err := c.Get("http://" + addr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("%s/metrics: %s", addr, resp.Status)
	}
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return string(body)
}
