// Package httpdoor is the HTTP/JSON door: the decision door's operations as
// POST /v1/<op> with protojson bodies, for services that do not speak gRPC.
// It calls the same RateLimiter the gRPC door serves — the same decisions,
// the same errors (as RFC 9457 problem JSON), the same secret and $peer.
package httpdoor

import (
	"context"
	_ "embed"
	"encoding/json"
	"errors"
	"io"
	"mime"
	"net/http"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"

	tkv1 "github.com/throttlekit/throttlekit-go/sdk-go/gen/throttlekit/v1"
	"github.com/throttlekit/throttlekit-go/sdk-go/ratelimitheader"
	"github.com/throttlekit/throttlekit-go/server/auth"
)

// MaxBodyBytes caps a request body: the largest valid request (1000 keys
// of 1 KiB in a CheckMany) fits well within it.
const MaxBodyBytes = 2 << 20

// openAPI is the door's OpenAPI 3.1 document, served at /v1/openapi.json.
//
//go:embed openapi.json
var openAPI []byte

// route is one operation: how to make its request and call the door.
type route struct {
	newReq func() proto.Message
	call   func(ctx context.Context, rl tkv1.RateLimiterServer, req proto.Message) (proto.Message, error)
	// policyOf and decisionOf feed the rate-limit headers (nil: none).
	policyOf   func(req proto.Message) string
	decisionOf func(resp proto.Message) *tkv1.Decision
}

// routes are the door's operations, by path.
var routes = map[string]route{
	"/v1/check": {
		newReq: func() proto.Message { return &tkv1.CheckRequest{} },
		call: func(ctx context.Context, rl tkv1.RateLimiterServer, req proto.Message) (proto.Message, error) {
			return rl.Check(ctx, req.(*tkv1.CheckRequest))
		},
		policyOf:   func(req proto.Message) string { return req.(*tkv1.CheckRequest).GetPolicy() },
		decisionOf: func(resp proto.Message) *tkv1.Decision { return resp.(*tkv1.CheckResponse).GetDecision() },
	},
	"/v1/check-many": {
		newReq: func() proto.Message { return &tkv1.CheckManyRequest{} },
		call: func(ctx context.Context, rl tkv1.RateLimiterServer, req proto.Message) (proto.Message, error) {
			return rl.CheckMany(ctx, req.(*tkv1.CheckManyRequest))
		},
	},
	"/v1/peek": {
		newReq: func() proto.Message { return &tkv1.PeekRequest{} },
		call: func(ctx context.Context, rl tkv1.RateLimiterServer, req proto.Message) (proto.Message, error) {
			return rl.Peek(ctx, req.(*tkv1.PeekRequest))
		},
		policyOf:   func(req proto.Message) string { return req.(*tkv1.PeekRequest).GetPolicy() },
		decisionOf: func(resp proto.Message) *tkv1.Decision { return resp.(*tkv1.PeekResponse).GetDecision() },
	},
	"/v1/forecast": {
		newReq: func() proto.Message { return &tkv1.ForecastRequest{} },
		call: func(ctx context.Context, rl tkv1.RateLimiterServer, req proto.Message) (proto.Message, error) {
			return rl.Forecast(ctx, req.(*tkv1.ForecastRequest))
		},
	},
	"/v1/debit": {
		newReq: func() proto.Message { return &tkv1.DebitRequest{} },
		call: func(ctx context.Context, rl tkv1.RateLimiterServer, req proto.Message) (proto.Message, error) {
			return rl.Debit(ctx, req.(*tkv1.DebitRequest))
		},
		policyOf:   func(req proto.Message) string { return req.(*tkv1.DebitRequest).GetPolicy() },
		decisionOf: func(resp proto.Message) *tkv1.Decision { return resp.(*tkv1.DebitResponse).GetDecision() },
	},
	"/v1/admit": {
		newReq: func() proto.Message { return &tkv1.AdmitRequest{} },
		call: func(ctx context.Context, rl tkv1.RateLimiterServer, req proto.Message) (proto.Message, error) {
			return rl.Admit(ctx, req.(*tkv1.AdmitRequest))
		},
	},
	"/v1/release": {
		newReq: func() proto.Message { return &tkv1.ReleaseRequest{} },
		call: func(ctx context.Context, rl tkv1.RateLimiterServer, req proto.Message) (proto.Message, error) {
			return rl.Release(ctx, req.(*tkv1.ReleaseRequest))
		},
	},
	"/v1/heartbeat": {
		newReq: func() proto.Message { return &tkv1.HeartbeatRequest{} },
		call: func(ctx context.Context, rl tkv1.RateLimiterServer, req proto.Message) (proto.Message, error) {
			return rl.Heartbeat(ctx, req.(*tkv1.HeartbeatRequest))
		},
	},
}

// New returns the door's handler over rl; secret, when set, must be
// presented as X-Throttlekit-Secret or Authorization: Bearer.
func New(rl tkv1.RateLimiterServer, secret string) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) { _, _ = io.WriteString(w, "ok\n") })
	mux.HandleFunc("GET /v1/openapi.json", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write(openAPI)
	})
	for path, rt := range routes {
		mux.Handle("POST "+path, handler(rl, secret, rt))
	}
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		problem(w, http.StatusNotFound, "no such operation: "+r.Method+" "+r.URL.Path+" (see /v1/openapi.json)")
	})
	return mux
}

func handler(rl tkv1.RateLimiterServer, secret string, rt route) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if secret != "" {
			md := metadata.MD{auth.DecisionHeader: r.Header.Values(auth.DecisionHeader), "authorization": r.Header.Values("Authorization")}
			if !auth.Presented(md, auth.DecisionHeader, secret) {
				problem(w, http.StatusUnauthorized, "missing or wrong secret: send it in X-Throttlekit-Secret or Authorization: Bearer")
				return
			}
		}
		// Only JSON: a browser sends a cross-site form or text/plain POST
		// without asking first, never application/json.
		if mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type")); err != nil || mt != "application/json" {
			problem(w, http.StatusUnsupportedMediaType, "the request body must be sent as Content-Type: application/json")
			return
		}
		body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, MaxBodyBytes))
		if err != nil {
			var tooBig *http.MaxBytesError
			if errors.As(err, &tooBig) {
				problem(w, http.StatusRequestEntityTooLarge, "the request body is over the door's limit of 2 MiB")
				return
			}
			problem(w, http.StatusBadRequest, "the request body could not be read")
			return
		}
		req := rt.newReq()
		if len(body) > 0 {
			if err := protojson.Unmarshal(body, req); err != nil {
				problem(w, http.StatusBadRequest, "the body is not the operation's request in protojson: "+err.Error())
				return
			}
		}
		if err := auth.ReplacePeerKeys(req, func() (string, bool) { return auth.Identity(r.TLS) }); err != nil {
			writeStatus(w, err)
			return
		}
		resp, err := rt.call(r.Context(), rl, req)
		if err != nil {
			writeStatus(w, err)
			return
		}
		out, err := protojson.MarshalOptions{EmitUnpopulated: true}.Marshal(resp)
		if err != nil {
			problem(w, http.StatusInternalServerError, "the answer could not be encoded")
			return
		}
		if rt.decisionOf != nil {
			d := rt.decisionOf(resp)
			dec := ratelimitheader.Values{Allowed: d.GetAllowed(), Limit: d.GetLimit(), Remaining: d.GetRemaining(), ResetAt: d.GetResetAt(), RetryAfterMs: d.GetRetryAfterMs()}
			for _, f := range ratelimitheader.Fields(ratelimitheader.Policy{Name: rt.policyOf(req)}, dec, time.Now(), ratelimitheader.Structured) {
				w.Header().Set(f.Name, f.Value)
			}
		}
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write(out)
	})
}

// httpStatus maps the door's gRPC codes to HTTP.
var httpStatus = map[codes.Code]int{
	codes.InvalidArgument: http.StatusBadRequest,
	codes.Unauthenticated: http.StatusUnauthorized,
	codes.NotFound:        http.StatusNotFound,
	codes.Unimplemented:   http.StatusNotImplemented,
	codes.Unavailable:     http.StatusServiceUnavailable,
	codes.Canceled:        499, // the client went away
}

func writeStatus(w http.ResponseWriter, err error) {
	s := status.Convert(err)
	code, ok := httpStatus[s.Code()]
	if !ok {
		code = http.StatusInternalServerError
	}
	problem(w, code, s.Message())
}

// problem writes an RFC 9457 problem document.
func problem(w http.ResponseWriter, code int, detail string) {
	w.Header().Set("Content-Type", "application/problem+json")
	w.WriteHeader(code)
	title := http.StatusText(code)
	if title == "" {
		title = "Client Closed Request"
	}
	_ = json.NewEncoder(w).Encode(map[string]any{"type": "about:blank", "title": title, "status": code, "detail": detail})
}
