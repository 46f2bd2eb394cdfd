package capture

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"

	"github.com/throttlekit/throttlekit-go/sdk-go/trace"
)

// Segment is what one flush of one scope (a tenant's arrivals of one
// policy) holds, as its file keeps it once decrypted.
type Segment struct {
	Policy string `json:"policy"`
	Kind   string `json:"kind"`
	// Tenant is redacted as the keys are ("" without a tenant rule).
	Tenant    string      `json:"tenant"`
	CreatedAt int64       `json:"createdAt"`
	Redaction string      `json:"redaction"`
	Clock     trace.Clock `json:"clock"`
	Counts    Counts      `json:"counts"`
	// Dropped counts the scope's arrivals lost since the last flush (a
	// full ring); Truncated also marks arrivals of the policy lost before
	// their scope was known (a full queue, or no room for a new scope).
	Dropped     int64             `json:"dropped"`
	Truncated   bool              `json:"truncated"`
	Fingerprint trace.Fingerprint `json:"fingerprint"`
	Events      []trace.Step      `json:"events"`
}

// Counts are a segment's decisions.
type Counts struct {
	Events  int64 `json:"events"`
	Allowed int64 `json:"allowed"`
	Denied  int64 `json:"denied"`
}

// Trace is the segment as a trace: what `capture export` writes and
// `policy plan --corpus` reads as it is.
func (s *Segment) Trace() *trace.Trace {
	steps := s.Events
	if steps == nil {
		steps = []trace.Step{}
	}
	return &trace.Trace{Version: trace.Version, Fingerprint: s.Fingerprint, Redacted: true, Truncated: s.Truncated,
		Dropped: s.Dropped, Steps: steps}
}

// The file format: seg-<createdAt>-<random>.bin, holding a 12-byte IV, the
// 16-byte GCM tag, then the ciphertext of the segment's JSON. No tenant or
// key is in a name.
const (
	segPrefix = "seg-"
	segSuffix = ".bin"
	ivSize    = 12
	tagSize   = 16
)

// Vault reads and writes a capture directory's segments under one
// AES-256-GCM key.
type Vault struct {
	Dir  string
	aead cipher.AEAD
}

// ParseKey reads a 64-hex-digit AES-256 key.
func ParseKey(text string) ([]byte, error) {
	key, err := hex.DecodeString(strings.TrimSpace(text))
	if err != nil || len(key) != 32 {
		return nil, errors.New("the encryption key must be 64 hex digits (32 bytes: AES-256)")
	}
	return key, nil
}

// NewVault opens dir (creating it, mode 0700) under key (32 bytes).
func NewVault(dir string, key []byte) (*Vault, error) {
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, fmt.Errorf("capture key: %w", err)
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("capture dir: %w", err)
	}
	return &Vault{Dir: dir, aead: aead}, nil
}

// Write stores s as a new segment file (written whole, then renamed into
// place) and returns its id.
func (v *Vault) Write(s *Segment) (string, error) {
	plain, err := json.Marshal(s)
	if err != nil {
		return "", err
	}
	buf := make([]byte, sealRoom, sealRoom+len(plain)+tagSize)
	id, _, err := v.write(s.CreatedAt, append(buf, plain...))
	return id, err
}

// sealRoom is what a buffer given to write holds before the plaintext:
// room for the IV and the tag, which the file keeps before the ciphertext.
const sealRoom = ivSize + tagSize

// write stores buf[sealRoom:], a segment's JSON created at createdAt,
// encrypted where it lies (the buffer, grown by a tag, is returned for the
// next): a flush's segments are as large as the decisions it captured,
// and one buffer, kept, spares the copies and the garbage.
func (v *Vault) write(createdAt int64, buf []byte) (string, []byte, error) {
	var rnd [8]byte
	if _, err := rand.Read(rnd[:]); err != nil {
		return "", buf, err
	}
	id := fmt.Sprintf("%s%d-%s", segPrefix, createdAt, hex.EncodeToString(rnd[:]))
	// The plaintext is sealed in place, its tag after it; the tag moves
	// into the room before it.
	out := slices.Grow(buf, tagSize)
	iv, plain := out[:ivSize], out[sealRoom:]
	if _, err := rand.Read(iv); err != nil {
		return "", out, err
	}
	sealed := v.aead.Seal(plain[:0], iv, plain, nil) // ciphertext, then tag
	copy(out[ivSize:sealRoom], sealed[len(plain):])
	tmp := filepath.Join(v.Dir, "."+id+".tmp")
	if err := os.WriteFile(tmp, out, 0o600); err != nil {
		return "", out, err
	}
	if err := os.Rename(tmp, filepath.Join(v.Dir, id+segSuffix)); err != nil {
		_ = os.Remove(tmp)
		return "", out, err
	}
	return id, out, nil
}

// ErrAuth is a segment that fails authentication: tampered with, or
// encrypted under another key.
var ErrAuth = errors.New("fails authentication: the file was tampered with, or encrypted under another key")

// Read decrypts the segment id.
func (v *Vault) Read(id string) (*Segment, error) {
	if !validID(id) {
		return nil, fmt.Errorf("segment %q: not a segment id (seg-<createdAt>-<hex>)", id)
	}
	raw, err := os.ReadFile(filepath.Join(v.Dir, id+segSuffix))
	if err != nil {
		return nil, fmt.Errorf("segment %s: %w", id, err)
	}
	if len(raw) < ivSize+tagSize {
		return nil, fmt.Errorf("segment %s %w", id, ErrAuth)
	}
	iv, tag, ct := raw[:ivSize], raw[ivSize:ivSize+tagSize], raw[ivSize+tagSize:]
	plain, err := v.aead.Open(nil, iv, append(append([]byte{}, ct...), tag...), nil)
	if err != nil {
		return nil, fmt.Errorf("segment %s %w", id, ErrAuth)
	}
	var s Segment
	if err := json.Unmarshal(plain, &s); err != nil {
		return nil, fmt.Errorf("segment %s: %w", id, err)
	}
	return &s, nil
}

// validID reports whether id names a segment (and nothing else: no path).
func validID(id string) bool {
	_, ok := createdAt(id + segSuffix)
	return ok && !strings.ContainsAny(id, `/\`)
}

// createdAt reads a segment file name's instant.
func createdAt(name string) (int64, bool) {
	if !strings.HasPrefix(name, segPrefix) || !strings.HasSuffix(name, segSuffix) {
		return 0, false
	}
	parts := strings.Split(strings.TrimSuffix(strings.TrimPrefix(name, segPrefix), segSuffix), "-")
	if len(parts) != 2 || len(parts[1]) != 16 {
		return 0, false
	}
	if _, err := hex.DecodeString(parts[1]); err != nil {
		return 0, false
	}
	at, err := strconv.ParseInt(parts[0], 10, 64)
	return at, err == nil
}

// IDs are the segments in the directory, oldest first.
func (v *Vault) IDs() ([]string, error) {
	entries, err := os.ReadDir(v.Dir)
	if err != nil {
		return nil, fmt.Errorf("capture dir: %w", err)
	}
	type seg struct {
		id string
		at int64
	}
	var segs []seg
	for _, e := range entries {
		if at, ok := createdAt(e.Name()); ok && e.Type().IsRegular() {
			segs = append(segs, seg{strings.TrimSuffix(e.Name(), segSuffix), at})
		}
	}
	sort.Slice(segs, func(i, j int) bool {
		return segs[i].at < segs[j].at || (segs[i].at == segs[j].at && segs[i].id < segs[j].id)
	})
	out := make([]string, len(segs))
	for i, s := range segs {
		out[i] = s.id
	}
	return out, nil
}

// Sweep deletes the segments created before cutoff (epoch ms) and returns
// how many.
func (v *Vault) Sweep(cutoff int64) (int, error) {
	ids, err := v.IDs()
	if err != nil {
		return 0, err
	}
	n := 0
	for _, id := range ids {
		at, _ := createdAt(id + segSuffix)
		if at >= cutoff {
			break
		}
		if err := os.Remove(filepath.Join(v.Dir, id+segSuffix)); err != nil && !os.IsNotExist(err) {
			return n, err
		}
		n++
	}
	return n, nil
}
