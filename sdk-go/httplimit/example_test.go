package httplimit_test

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"testing"
	"time"

	"github.com/throttlekit/throttlekit-go/internal/testserver"
	"github.com/throttlekit/throttlekit-go/sdk-go/httplimit"
	"github.com/throttlekit/throttlekit-go/sdk-go/throttlekit"
)

// serverAddr is a real throttlekit-server serving this package's test
// policies, for the examples.
var serverAddr string

func TestMain(m *testing.M) { os.Exit(testserver.Main(m, policies, &serverAddr)) }

func ExampleMiddleware() {
	client, err := throttlekit.NewClient(serverAddr) // e.g. "localhost:50051"
	if err != nil {
		fmt.Println(err)
		return
	}
	defer client.Close()
	// "hourly" allows 2 requests per hour per caller address.
	limit, err := httplimit.Middleware(client, "hourly", httplimit.WithWindow(time.Hour))
	if err != nil {
		fmt.Println(err)
		return
	}
	hello := http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { fmt.Fprint(w, "hello") })
	h := limit(hello)

	for i := 0; i < 3; i++ {
		r := httptest.NewRequest(http.MethodGet, "/", nil)
		r.RemoteAddr = "192.0.2.1:5555"
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		fmt.Println(w.Code, w.Header().Get("RateLimit-Limit"), w.Header().Get("RateLimit-Remaining"), w.Header().Get("Retry-After") != "")
	}
	// Output:
	// 200 2 1 false
	// 200 2 0 false
	// 429 2 0 true
}
