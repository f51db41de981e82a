package main

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestOnlyServeNeedsPasswords: with an Ascio endpoint configured, the
// daemon reads its password from systemd's credentials folder, and the
// commands an operator runs from a shell without it (forwarded to the
// daemon, or run locally) work. (Before, every command refused the config:
// "ascio.password is empty while ascio.endpoint is set".)
func TestOnlyServeNeedsPasswords(t *testing.T) {
	cfg := writeServeConfig(t, `[ascio]
endpoint = "http://127.0.0.1:1/v3/AscioService.svc"
account = "reseller"
`)
	t.Setenv("ERRPD_ASCIO_PASSWORD", "")

	// Without the password anywhere, serve refuses to start, saying where
	// it may come from.
	_, _, err := errpd(t, context.Background(), "serve", "--config", cfg)
	if err == nil || !strings.Contains(err.Error(), "ascio.password is empty") || !strings.Contains(err.Error(), "errpd-ascio-password") {
		t.Fatalf("serve without an Ascio password: %v", err)
	}
	// Commands run locally need none.
	csv := filepath.Join(t.TempDir(), "calendar.csv")
	os.WriteFile(csv, []byte("domain,expiry,mode,registrant_name,registrant_email,language,order_id,brand\nshell.example.com,2099-12-31,renew,Ann,ann@example.org,en,,\n"), 0o600)
	for _, args := range [][]string{{"import", csv}, {"steps"}} {
		if out, _, err := errpd(t, context.Background(), append(args, "--config", cfg)...); err != nil {
			t.Errorf("%s without a daemon and without a password: %v %s", args[0], err, out)
		}
	}

	creds := t.TempDir()
	os.WriteFile(filepath.Join(creds, "errpd-ascio-password"), []byte("s3cr3t\n"), 0o600)
	t.Setenv("CREDENTIALS_DIRECTORY", creds)
	logs := serveInProcess(t, cfg)
	if !strings.Contains(logs.String(), "credential errpd-ascio-password") {
		t.Errorf("serve does not say where the password came from:\n%s", logs)
	}
	// The operator's shell: no credentials, no environment variable.
	t.Setenv("CREDENTIALS_DIRECTORY", "")
	for _, args := range [][]string{{"import", csv}, {"steps"}, {"domains"}} {
		out, _, err := errpd(t, context.Background(), append(args, "--config", cfg)...)
		if err != nil {
			t.Errorf("%s through the daemon without a password: %v %s", args[0], err, out)
		}
	}
	if strings.Contains(logs.String(), "s3cr3t") {
		t.Errorf("the password is in the log:\n%s", logs)
	}
}
