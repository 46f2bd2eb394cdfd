package app

import (
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"

	"github.com/throttlekit/throttlekit-go/server/capture"
	"github.com/throttlekit/throttlekit-go/server/config"
)

// operator opens the capture of the policy file at path for a person
// holding its operator credential (THROTTLEKIT_CAPTURE_CREDENTIAL).
func operator(path string) (*capture.Operator, *config.Capture, error) {
	cfg, err := config.Load(path)
	if err != nil {
		return nil, nil, err
	}
	if cfg.Capture == nil {
		return nil, nil, fmt.Errorf("%s has no enabled capture block", path)
	}
	want, err := capture.ReadSecret(cfg.Capture.Operator)
	if err != nil {
		return nil, nil, err
	}
	if err := capture.Authorize(os.Getenv(capture.CredentialEnv), want); err != nil {
		return nil, nil, err
	}
	vault, err := openVault(cfg.Capture)
	if err != nil {
		return nil, nil, err
	}
	principal := os.Getenv("THROTTLEKIT_CAPTURE_PRINCIPAL")
	if principal == "" {
		principal = os.Getenv("USER")
	}
	if principal == "" {
		principal = "operator"
	}
	return &capture.Operator{Vault: vault, Principal: principal}, cfg.Capture, nil
}

// captureCommand is `throttlekit-server capture list|export|sweep --config
// F [--id ID]`: JSON on stdout, exit 0 on success and 1 on an error (2 for
// a usage error).
func captureCommand(args []string, stdout, stderr io.Writer) int {
	usage := "usage: throttlekit-server capture list|export|sweep --config FILE [--id SEGMENT] (the operator credential in " + capture.CredentialEnv + ")"
	if len(args) == 0 {
		fmt.Fprintln(stderr, usage)
		return 2
	}
	action := args[0]
	if action != "list" && action != "export" && action != "sweep" {
		fmt.Fprintln(stderr, usage)
		return 2
	}
	fs := flag.NewFlagSet("throttlekit-server capture "+action, flag.ContinueOnError)
	fs.SetOutput(stderr)
	path := fs.String("config", "", "the policy file whose capture block names the directory (required)")
	id := fs.String("id", "", "export: one segment (default: every one)")
	if err := fs.Parse(args[1:]); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	if *path == "" || fs.NArg() > 0 || (*id != "" && action != "export") {
		fmt.Fprintln(stderr, usage)
		return 2
	}
	fail := func(err error) int {
		fmt.Fprintf(stderr, "throttlekit-server capture %s: %v\n", action, err)
		return 1
	}
	op, c, err := operator(*path)
	if err != nil {
		return fail(err)
	}
	var out any
	switch action {
	case "list":
		segs, err := op.List()
		if err != nil {
			return fail(err)
		}
		out = map[string]any{"segments": segs}
	case "export":
		corpus, err := op.Export(*id)
		if err != nil {
			return fail(err)
		}
		out = corpus
	case "sweep":
		n, err := op.Sweep(c.TTLMs)
		if err != nil {
			return fail(err)
		}
		out = map[string]int{"deleted": n}
	}
	enc := json.NewEncoder(stdout)
	if err := enc.Encode(out); err != nil {
		return fail(err)
	}
	return 0
}
