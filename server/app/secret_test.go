package app

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestSecretFrom(t *testing.T) {
	dir := t.TempDir()
	write := func(name, content string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	good, blank := write("good", "s3cret\n"), write("blank", " \n")
	t.Setenv("TK_TEST_SECRET", "from-env")
	cases := []struct {
		name, value, file, want, err string
	}{
		{"flag", "v", "", "v", ""},
		{"file, newline trimmed", "", good, "s3cret", ""},
		{"environment", "", "", "from-env", ""},
		{"flag and file", "v", good, "", "both given"},
		{"missing file", "", filepath.Join(dir, "absent"), "", "no such file"},
		{"blank file", "", blank, "", "holds no secret"},
	}
	for _, tc := range cases {
		got, err := secretFrom("--secret", tc.value, tc.file, "TK_TEST_SECRET")
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("%s: %q, %v; want an error containing %q", tc.name, got, err, tc.err)
			}
			continue
		}
		if err != nil || got != tc.want {
			t.Errorf("%s: %q, %v; want %q", tc.name, got, err, tc.want)
		}
	}
}
