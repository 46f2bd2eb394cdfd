package httpdoor

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/throttlekit/throttlekit-go/server/config"
	"github.com/throttlekit/throttlekit-go/server/door"
	"github.com/throttlekit/throttlekit-go/server/store/memstore"
)

const policies = `version: 1
limiters:
  api: { strategy: gcra, limit: 2, period: 1h, burst: 2 }
  completions:
    tokenBudget: { budget: 100, windowMs: 60000 }
  checkout:
    concurrency: { minLimit: 1, maxLimit: 1 }
`

func newDoor(t *testing.T, secret string) http.Handler {
	t.Helper()
	cfg, err := config.Parse("p.yaml", []byte(policies))
	if err != nil {
		t.Fatal(err)
	}
	mem, meters := memstore.New(memstore.WithSweep(0)), memstore.New(memstore.WithSweep(0))
	t.Cleanup(func() { _ = mem.Close(); _ = meters.Close() })
	return New(door.NewRateLimiter(door.Options{Config: cfg, Store: mem, Meters: meters, Fail: config.FailOpen}), secret)
}

type answer struct {
	code   int
	header http.Header
	body   map[string]any
}

func post(t *testing.T, h http.Handler, path, body string, header ...string) answer {
	t.Helper()
	r := httptest.NewRequest(http.MethodPost, path, strings.NewReader(body))
	r.Header.Set("Content-Type", "application/json")
	for i := 0; i+1 < len(header); i += 2 {
		r.Header.Set(header[i], header[i+1])
	}
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	a := answer{code: w.Code, header: w.Result().Header}
	if err := json.Unmarshal(w.Body.Bytes(), &a.body); err != nil && w.Code != http.StatusOK {
		t.Fatalf("%s: a non-JSON answer %d %q", path, w.Code, w.Body.String())
	}
	return a
}

func TestDecisionsAndHeaders(t *testing.T) {
	h := newDoor(t, "")
	for i, want := range []bool{true, true, false} {
		a := post(t, h, "/v1/check", `{"policy":"api","key":"alice"}`)
		d := a.body["decision"].(map[string]any)
		if a.code != 200 || d["allowed"] != want || d["limit"] != "2" {
			t.Fatalf("check %d: %d %v", i, a.code, a.body)
		}
		if !strings.HasPrefix(a.header.Get("RateLimit"), `"api";r=`) || a.header.Get("RateLimit-Policy") != `"api";q=2` {
			t.Fatalf("check %d headers: %v", i, a.header)
		}
		if (a.header.Get("Retry-After") != "") == want {
			t.Fatalf("check %d: Retry-After %q", i, a.header.Get("Retry-After"))
		}
	}
	a := post(t, h, "/v1/check-many", `{"policy":"api","keys":["bob","carol"],"cost":"2"}`)
	if ds := a.body["decisions"].([]any); a.code != 200 || len(ds) != 2 || ds[0].(map[string]any)["remaining"] != "0" {
		t.Fatalf("check-many: %d %v", a.code, a.body)
	}
	if a := post(t, h, "/v1/debit", `{"policy":"completions","key":"t","tokens":30}`); a.body["decision"].(map[string]any)["remaining"] != "70" {
		t.Fatalf("debit: %v", a.body)
	}
	if a := post(t, h, "/v1/forecast", `{"policy":"api","key":"dave"}`); a.body["forecast"].(map[string]any)["spendableNow"] != "2" {
		t.Fatalf("forecast: %v", a.body)
	}
	adm := post(t, h, "/v1/admit", `{"policy":"checkout"}`)
	lease, _ := adm.body["leaseId"].(string)
	if adm.code != 200 || lease == "" {
		t.Fatalf("admit: %v", adm.body)
	}
	if a := post(t, h, "/v1/heartbeat", `{"leaseIds":["`+lease+`"]}`); len(a.body["liveIds"].([]any)) != 1 {
		t.Fatalf("heartbeat: %v", a.body)
	}
	if a := post(t, h, "/v1/release", `{"leaseId":"`+lease+`"}`); a.code != 200 {
		t.Fatalf("release: %d %v", a.code, a.body)
	}
	if a := post(t, h, "/v1/peek", `{"policy":"api","key":"alice"}`); a.code != 200 || a.body["decision"].(map[string]any)["allowed"] != false {
		t.Fatalf("peek: %v", a.body)
	}
}

func TestProblems(t *testing.T) {
	h := newDoor(t, "")
	cases := []struct {
		name, path, body string
		code             int
		detail           string
	}{
		{"unknown policy", "/v1/check", `{"policy":"nope","key":"k"}`, 404, "not configured"},
		{"negative cost", "/v1/check", `{"policy":"api","key":"k","cost":"-1"}`, 400, "negative"},
		{"not protojson", "/v1/check", `{"policy":"api","kee":"k"}`, 400, "protojson"},
		{"wrong kind", "/v1/debit", `{"policy":"api","key":"k"}`, 501, "Debit"},
		{"$peer without mTLS", "/v1/check", `{"policy":"api","key":"$peer"}`, 400, "client certificate"},
		{"no such operation", "/v1/spend", `{}`, 404, "no such operation"},
		{"too big", "/v1/check-many", `{"policy":"api","keys":["` + strings.Repeat("k", MaxBodyBytes) + `"]}`, 413, "limit"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			a := post(t, h, tc.path, tc.body)
			if a.code != tc.code || a.header.Get("Content-Type") != "application/problem+json" ||
				a.body["status"] != float64(tc.code) || !strings.Contains(a.body["detail"].(string), tc.detail) || a.body["title"] == "" {
				t.Fatalf("%d %v %v; want %d with %q", a.code, a.header, a.body, tc.code, tc.detail)
			}
		})
	}
}

func TestSecret(t *testing.T) {
	h := newDoor(t, "s3")
	for _, tc := range []struct {
		header []string
		code   int
	}{
		{nil, 401},
		{[]string{"X-Throttlekit-Secret", "no"}, 401},
		{[]string{"X-Throttlekit-Secret", "s3"}, 200},
		{[]string{"Authorization", "Bearer s3"}, 200},
	} {
		if a := post(t, h, "/v1/check", `{"policy":"api","key":"k"}`, tc.header...); a.code != tc.code {
			t.Errorf("secret %v: %d, want %d", tc.header, a.code, tc.code)
		}
	}
}

// TestEveryDocumentedPathIsServed walks the OpenAPI document.
func TestEveryDocumentedPathIsServed(t *testing.T) {
	h := newDoor(t, "")
	var doc struct {
		Paths map[string]map[string]any `json:"paths"`
	}
	if err := json.Unmarshal(openAPI, &doc); err != nil {
		t.Fatal(err)
	}
	for path, ops := range doc.Paths {
		for method := range ops {
			r := httptest.NewRequest(strings.ToUpper(method), path, strings.NewReader("{}"))
			w := httptest.NewRecorder()
			h.ServeHTTP(w, r)
			if strings.Contains(w.Body.String(), "no such operation") {
				t.Errorf("%s %s is documented but not served", method, path)
			}
		}
	}
}

// TestOnlyJSONBodies: a body a browser could send cross-site without a
// preflight (text/plain, a form) is refused 415 before anything is decided.
func TestOnlyJSONBodies(t *testing.T) {
	h := newDoor(t, "")
	for _, ct := range []string{"", "text/plain", "text/plain; charset=utf-8", "application/x-www-form-urlencoded", "multipart/form-data; boundary=x"} {
		a := post(t, h, "/v1/check", `{"policy":"api","key":"csrf"}`, "Content-Type", ct)
		if a.code != http.StatusUnsupportedMediaType {
			t.Errorf("Content-Type %q: %d, want 415", ct, a.code)
		}
	}
	if a := post(t, h, "/v1/check", `{"policy":"api","key":"csrf"}`, "Content-Type", "application/json; charset=utf-8"); a.code != http.StatusOK {
		t.Errorf("application/json with a charset: %d", a.code)
	}
}
