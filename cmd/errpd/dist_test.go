package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/errpd/errpd/config"
)

// lookTool finds a tool the test needs: missing, the test fails under CI
// and is skipped elsewhere.
func lookTool(t *testing.T, name string) string {
	t.Helper()
	path, err := exec.LookPath(name)
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("%s is missing (apt-get install systemd)", name)
		}
		t.Skipf("%s is missing", name)
	}
	return path
}

// TestUnitHardening: dist/errpd.service rates 2.5 or better in
// `systemd-analyze security` (it was 8.5 EXPOSED), passes passwords as
// credentials under the names errpd reads, never in its environment, and
// sets the descriptor limit and umask. The unit is rated offline; no
// systemd needs to run.
func TestUnitHardening(t *testing.T) {
	unit := filepath.Join("..", "..", "dist", "errpd.service")
	b, err := os.ReadFile(unit)
	if err != nil {
		t.Fatal(err)
	}
	text := string(b)
	for _, want := range []string{
		"LoadCredential=" + config.SMTPPasswordCredential + "\n",
		"LoadCredential=" + config.AscioPasswordCredential + "\n",
		"LimitNOFILE=65536\n", "UMask=0077\n", "User=errpd\n",
	} {
		if !strings.Contains(text, want) {
			t.Errorf("%s lacks %q", unit, want)
		}
	}
	if regexp.MustCompile(`(?m)^(Environment|EnvironmentFile)=`).MatchString(text) {
		t.Errorf("%s sets an environment; passwords go in credentials", unit)
	}

	out, err := exec.Command(lookTool(t, "systemd-analyze"), "security", "--offline=true", "--no-pager", unit).CombinedOutput()
	if err != nil {
		t.Fatalf("systemd-analyze security: %v\n%s", err, out)
	}
	m := regexp.MustCompile(`Overall exposure level for errpd\.service: ([0-9.]+)`).FindSubmatch(out)
	if m == nil {
		t.Fatalf("no exposure level in:\n%s", out)
	}
	if score, _ := strconv.ParseFloat(string(m[1]), 64); score > 2.5 {
		t.Errorf("exposure %.1f, want 2.5 or better:\n%s", score, out)
	}
}

// TestSysusersCreatesTheUser: dist/sysusers.d/errpd.conf creates the
// errpd user and group that the unit runs as, with no login shell.
func TestSysusersCreatesTheUser(t *testing.T) {
	root := t.TempDir()
	os.Mkdir(filepath.Join(root, "etc"), 0o755)
	conf, err := filepath.Abs(filepath.Join("..", "..", "dist", "sysusers.d", "errpd.conf"))
	if err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(lookTool(t, "systemd-sysusers"), "--root="+root, conf).CombinedOutput()
	if err != nil {
		t.Fatalf("systemd-sysusers: %v\n%s", err, out)
	}
	passwd, _ := os.ReadFile(filepath.Join(root, "etc", "passwd"))
	group, _ := os.ReadFile(filepath.Join(root, "etc", "group"))
	if !regexp.MustCompile(`(?m)^errpd:x:\d+:\d+:[^:]*:/var/lib/errpd:/usr/sbin/nologin$`).Match(passwd) ||
		!regexp.MustCompile(`(?m)^errpd:x:\d+:`).Match(group) {
		t.Errorf("no errpd user and group (%s):\npasswd:\n%s\ngroup:\n%s", out, passwd, group)
	}
}
