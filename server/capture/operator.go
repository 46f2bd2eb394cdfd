package capture

import (
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/throttlekit/throttlekit-go/sdk-go/trace"
	"github.com/throttlekit/throttlekit-go/server/config"
)

// CredentialEnv carries the operator's credential to the commands that
// read captures (never a flag, which ps shows).
const CredentialEnv = "THROTTLEKIT_CAPTURE_CREDENTIAL"

// ReadSecret reads a secret the capture block names: the file's content
// (its trailing newline dropped) or the environment variable's value.
func ReadSecret(s config.Secret) (string, error) {
	var v string
	if s.File != "" {
		raw, err := os.ReadFile(s.File)
		if err != nil {
			return "", fmt.Errorf("%s: %w", s.Field, err)
		}
		v = strings.TrimRight(string(raw), "\r\n")
	} else {
		v = os.Getenv(s.Env)
	}
	if strings.TrimSpace(v) == "" {
		where := "environment variable " + s.Env
		if s.File != "" {
			where = "file " + s.File
		}
		return "", fmt.Errorf("%s: the %s holds no secret", s.Field, where)
	}
	return v, nil
}

// Operator reads a capture directory for a person holding the operator's
// credential, writing every action to the audit log.
type Operator struct {
	Vault *Vault
	// Principal is who acts, in the audit log.
	Principal string
	// Now is the wall clock (default time.Now).
	Now func() time.Time
}

// ErrCredential is a missing or wrong operator credential.
var ErrCredential = errors.New("the operator credential (" + CredentialEnv + ") is missing or wrong")

// Authorize compares the credential given with the operator secret, in
// constant time.
func Authorize(given, want string) error {
	if given == "" || subtle.ConstantTimeCompare([]byte(given), []byte(want)) != 1 {
		return ErrCredential
	}
	return nil
}

// auditEntry is one line of audit.jsonl.
type auditEntry struct {
	TS        int64  `json:"ts"`
	Principal string `json:"principal"`
	Action    string `json:"action"`
	Policy    string `json:"policy,omitempty"`
	Tenant    string `json:"tenant,omitempty"`
	Segment   string `json:"segment,omitempty"`
}

// audit appends an entry to <dir>/audit.jsonl: no action is taken unless
// it is recorded first.
func (o *Operator) audit(e auditEntry) error {
	if o.Now == nil {
		o.Now = time.Now
	}
	e.TS, e.Principal = o.Now().UnixMilli(), o.Principal
	line, err := json.Marshal(e)
	if err != nil {
		return err
	}
	f, err := os.OpenFile(filepath.Join(o.Vault.Dir, "audit.jsonl"), os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o600)
	if err != nil {
		return fmt.Errorf("audit log: %w", err)
	}
	if _, err := f.Write(append(line, '\n')); err != nil {
		_ = f.Close()
		return fmt.Errorf("audit log: %w", err)
	}
	return f.Close()
}

// Listing is one segment as `capture list` shows it.
type Listing struct {
	ID        string      `json:"id"`
	Policy    string      `json:"policy"`
	Tenant    string      `json:"tenant"`
	CreatedAt int64       `json:"createdAt"`
	Clock     trace.Clock `json:"clock"`
	Events    int         `json:"events"`
	Dropped   int64       `json:"dropped"`
	Truncated bool        `json:"truncated"`
}

// List describes every segment.
func (o *Operator) List() ([]Listing, error) {
	if err := o.audit(auditEntry{Action: "list"}); err != nil {
		return nil, err
	}
	ids, err := o.Vault.IDs()
	if err != nil {
		return nil, err
	}
	out := []Listing{}
	for _, id := range ids {
		s, err := o.Vault.Read(id)
		if err != nil {
			return nil, err
		}
		out = append(out, Listing{ID: id, Policy: s.Policy, Tenant: s.Tenant, CreatedAt: s.CreatedAt, Clock: s.Clock,
			Events: len(s.Events), Dropped: s.Dropped, Truncated: s.Truncated})
	}
	return out, nil
}

// Export returns the segments as a corpus — policy name to its traces,
// oldest first — which `policy plan --corpus` reads as it is; id ("" for
// all) picks one segment. Each segment exported is audited.
func (o *Operator) Export(id string) (map[string][]*trace.Trace, error) {
	ids := []string{id}
	if id == "" {
		var err error
		if ids, err = o.Vault.IDs(); err != nil {
			return nil, err
		}
	}
	out := map[string][]*trace.Trace{}
	for _, seg := range ids {
		s, err := o.Vault.Read(seg)
		if err != nil {
			return nil, err
		}
		if err := o.audit(auditEntry{Action: "export", Policy: s.Policy, Tenant: s.Tenant, Segment: seg}); err != nil {
			return nil, err
		}
		out[s.Policy] = append(out[s.Policy], s.Trace())
	}
	return out, nil
}

// Sweep deletes the segments older than ttlMs.
func (o *Operator) Sweep(ttlMs int64) (int, error) {
	if err := o.audit(auditEntry{Action: "sweep"}); err != nil {
		return 0, err
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	return o.Vault.Sweep(o.Now().UnixMilli() - ttlMs)
}
