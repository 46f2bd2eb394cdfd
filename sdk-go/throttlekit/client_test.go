package throttlekit_test

import (
	"strings"
	"testing"
	"time"

	"github.com/throttlekit/throttlekit-go/sdk-go/throttlekit"
)

// TestBadOptionsFailWhenTheClientIsBuilt: an interval of zero or less used
// to panic inside the heartbeat goroutine, in the user's process, on the
// first heartbeating admission. It is an error from Dial now.
func TestBadOptionsFailWhenTheClientIsBuilt(t *testing.T) {
	for _, d := range []time.Duration{0, -time.Second} {
		c, err := throttlekit.Dial("127.0.0.1:1", throttlekit.WithHeartbeatInterval(d))
		if err == nil || !strings.Contains(err.Error(), "must be positive") {
			t.Errorf("WithHeartbeatInterval(%s): client %v, error %v; want a clear error", d, c, err)
		}
	}
	c, err := throttlekit.Dial("127.0.0.1:1", throttlekit.WithHeartbeatInterval(50*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
}
