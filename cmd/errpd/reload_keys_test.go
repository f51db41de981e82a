package main

import (
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/errpd/errpd/config"
)

func TestRestartKeys(t *testing.T) {
	started := config.Default()
	now := config.Default()
	now.SMTP.Host = "relay.example.net"
	now.Store.OpenTimeout = time.Minute
	now.Policy.Windows = map[string]config.PolicyWindow{"reminder1": {OpensDays: -30, DeadlineDays: -26}}
	now.Mail.From = "other@example.net" // reloadable: not named
	now.Ascio.Password = "s3cret"       // named, never shown
	got := restartKeys(started, now)
	want := []string{"store.open_timeout", "smtp.host", "ascio.password", "policy.windows"}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("restartKeys (-want +got):\n%s", diff)
	}
	if keys := restartKeys(started, config.Default()); len(keys) != 0 {
		t.Errorf("same config: %v", keys)
	}
}

// TestSIGHUPNamesRestartKeys: a SIGHUP after changing settings that apply
// only on restart names each of them in one log line. (Before: the log
// said only which kinds of settings change on restart.)
func TestSIGHUPNamesRestartKeys(t *testing.T) {
	dir := t.TempDir()
	cfg := filepath.Join(dir, "errpd.toml")
	base := "[store]\npath = \"errpd.db\"\n[http]\nlisten = \"127.0.0.1:0\"\n[smtp]\noutbox_dir = \"outbox\"\n"
	os.WriteFile(cfg, []byte(base), 0o600)
	logs := serveInProcess(t, cfg)

	os.WriteFile(cfg, []byte(base+"max_connections = 2\n[policy]\nsend_hour = 9\n[mail]\nfrom = \"Other <other@example.net>\"\n"), 0o600)
	if err := syscall.Kill(os.Getpid(), syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the reload's log line", func() bool { return strings.Contains(logs.String(), "take effect only on restart") })
	var line string
	for l := range strings.SplitSeq(logs.String(), "\n") {
		if strings.Contains(l, "take effect only on restart") {
			line = l
		}
	}
	if !strings.Contains(line, "smtp.max_connections, policy.send_hour") || strings.Contains(line, "mail") {
		t.Errorf("log line: %s", line)
	}
}
