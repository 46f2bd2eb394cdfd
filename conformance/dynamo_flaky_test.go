package conformance

import (
	"bytes"
	"context"
	"math/rand/v2"
	"net"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/throttlekit/throttlekit-go/conformance/harness"
)

// breakingProxy forwards loopback TCP to target; while breaks > 0, the next
// request it sees on any connection is not forwarded: the connection is
// closed under the client instead, as an endpoint that drops a keep-alive
// connection does (moto's server did so in CI, mid-read).
type breakingProxy struct {
	ln     net.Listener
	target string
	breaks atomic.Int32
	// putBreaks drops the next PutItem requests unsent; putSwallows sends
	// them on and closes the connection when their replies arrive, so the
	// write lands and the client cannot know it did.
	putBreaks, putSwallows atomic.Int32
	// chaos, when set, breaks PutItems at random: one in chaos has its
	// reply lost after it landed; one in chaos is cut from the client at
	// once and lands late, while the client is already reading back or
	// sending it again.
	chaos atomic.Int32
	wg    sync.WaitGroup
}

const putTarget = "DynamoDB_20120810.PutItem"

func startBreakingProxy(t *testing.T, target string) *breakingProxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &breakingProxy{ln: ln, target: target}
	p.wg.Add(1)
	go p.accept()
	t.Cleanup(func() { ln.Close(); p.wg.Wait() })
	return p
}

func (p *breakingProxy) accept() {
	defer p.wg.Done()
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		p.wg.Add(1)
		go func() {
			defer p.wg.Done()
			p.serve(c)
		}()
	}
}

func (p *breakingProxy) serve(c net.Conn) {
	defer c.Close()
	up, err := net.Dial("tcp", p.target)
	if err != nil {
		return
	}
	defer up.Close()
	var swallow atomic.Bool
	upDone := make(chan struct{})
	go func() {
		defer close(upDone)
		defer c.Close()
		buf := make([]byte, 32<<10)
		for {
			n, err := up.Read(buf)
			if n > 0 && swallow.Load() {
				up.Close() // the reply arrived: the write landed; the client never hears
				return
			}
			if n > 0 {
				if _, err := c.Write(buf[:n]); err != nil {
					return
				}
			}
			if err != nil {
				return
			}
		}
	}()
	buf := make([]byte, 32<<10)
	for {
		n, err := c.Read(buf)
		if n > 0 {
			if p.breaks.Load() > 0 && p.breaks.Add(-1) >= 0 {
				return // drop the request: both sides are closed
			}
			isPut := strings.Contains(string(buf[:n]), putTarget)
			if isPut && p.putBreaks.Load() > 0 && p.putBreaks.Add(-1) >= 0 {
				return
			}
			if isPut && p.putSwallows.Load() > 0 && p.putSwallows.Add(-1) >= 0 {
				swallow.Store(true)
			}
			if odds := p.chaos.Load(); isPut && odds > 0 {
				switch rand.IntN(int(odds)) {
				case 0:
					swallow.Store(true)
				case 1:
					// Late: the client hears the connection close before the
					// write is even sent.
					req, ok := wholeRequest(c, buf[:n])
					c.Close()
					if !ok {
						return
					}
					time.Sleep(time.Duration(1+rand.IntN(20)) * time.Millisecond)
					swallow.Store(true)
					if _, werr := up.Write(req); werr == nil {
						select {
						case <-upDone:
						case <-time.After(10 * time.Second):
						}
					}
					return
				}
			}
			if _, werr := up.Write(buf[:n]); werr != nil {
				return
			}
		}
		if err != nil {
			return // EOF or a broken connection: done either way
		}
	}
}

// wholeRequest reads the rest of the HTTP request whose first bytes are
// first (a client may write its headers and body apart).
func wholeRequest(c net.Conn, first []byte) ([]byte, bool) {
	req := append([]byte(nil), first...)
	buf := make([]byte, 32<<10)
	_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
	for {
		if end := bytes.Index(req, []byte("\r\n\r\n")); end >= 0 {
			head := strings.ToLower(string(req[:end]))
			length := 0
			if i := strings.Index(head, "content-length:"); i >= 0 {
				line, _, _ := strings.Cut(head[i+len("content-length:"):], "\r\n")
				length, _ = strconv.Atoi(strings.TrimSpace(line))
			}
			if len(req) >= end+4+length {
				return req, true
			}
		}
		n, err := c.Read(buf)
		req = append(req, buf[:n]...)
		if err != nil {
			return nil, false
		}
	}
}

// TestDynamoReadSurvivesADroppedConnection: the endpoint drops the
// connection a read goes out on; the store reads again (a read has no
// effect) and decides for real, instead of handing the request to the
// fail mode. Writes are not retried blindly (a lost reply may have spent).
func TestDynamoReadSurvivesADroppedConnection(t *testing.T) {
	d := harness.StartDynamo(t)
	proxy := startBreakingProxy(t, strings.TrimPrefix(d.Endpoint, "http://"))
	cfg := harness.WriteFile(t, "p.yaml", "version: 1\nlimiters:\n  api: { strategy: fixedWindow, limit: 5, period: 3650d, fail: open }\n")
	srv := harness.Start(t, harness.Binary(t, false), "--config", cfg, "--dynamodb-table", "flaky",
		"--dynamodb-endpoint", "http://"+proxy.ln.Addr().String(), "--dynamodb-create-table", "--dynamodb-timeout", "30s")
	c := dialAll(t, []*harness.Server{srv})[0]
	for i := 0; i < 5; i++ {
		proxy.breaks.Store(1) // the next request — the decision's read — is dropped
		d, err := c.Check(context.Background(), "api", "k", 1)
		if err != nil {
			t.Fatal(err)
		}
		if d.ResetAt == 0 || d.Remaining != int64(4-i) {
			t.Fatalf("check %d after a dropped connection: %+v, want a real decision with %d left\nserver log:\n%s", i, d, 4-i, srv.Stderr())
		}
	}
	if proxy.breaks.Load() > 0 {
		t.Fatal("the proxy never dropped a request: the test proved nothing")
	}
}

// TestDynamoAmbiguousPutIsResolved: a put's connection drops after the
// request was sent (the write landed, the reply is lost) or before (it did
// not): the store reads the item back, finds whether its write id is
// there, and either answers from it or sends the put again — a real
// decision every time, and each request charged exactly once.
func TestDynamoAmbiguousPutIsResolved(t *testing.T) {
	d := harness.StartDynamo(t)
	proxy := startBreakingProxy(t, strings.TrimPrefix(d.Endpoint, "http://"))
	cfg := harness.WriteFile(t, "p.yaml", "version: 1\nlimiters:\n  api: { strategy: fixedWindow, limit: 6, period: 3650d, fail: open }\n")
	srv := harness.Start(t, harness.Binary(t, false), "--config", cfg, "--dynamodb-table", "ambiguous",
		"--dynamodb-endpoint", "http://"+proxy.ln.Addr().String(), "--dynamodb-create-table", "--dynamodb-timeout", "30s")
	c := dialAll(t, []*harness.Server{srv})[0]
	for i := 0; i < 6; i++ {
		what := "landed, reply lost"
		if i%2 == 0 {
			proxy.putSwallows.Store(1)
		} else {
			what = "never sent"
			proxy.putBreaks.Store(1)
		}
		d, err := c.Check(context.Background(), "api", "k", 1)
		if err != nil {
			t.Fatal(err)
		}
		if !d.Allowed || d.ResetAt == 0 || d.Remaining != int64(5-i) {
			t.Fatalf("check %d after a put that %s: %+v, want a real decision with %d left\nserver log:\n%s", i, what, d, 5-i, srv.Stderr())
		}
		if proxy.putSwallows.Load() > 0 || proxy.putBreaks.Load() > 0 {
			t.Fatalf("check %d: the proxy never broke a put: the test proved nothing", i)
		}
	}
	if d, err := c.Check(context.Background(), "api", "k", 1); err != nil || d.Allowed || d.ResetAt == 0 {
		t.Fatalf("the seventh check: %+v %v, want a real denial (six charged exactly once each)", d, err)
	}
}
