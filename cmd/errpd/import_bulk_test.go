package main

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// import --bulk loads new domains, imports a stored one as import does,
// rejects a row that cannot be rendered with its line, and leaves a
// store that verifies.
func TestImportBulk(t *testing.T) {
	cfg := testConfig(t)
	path := importSome(t, cfg) // a..d.example, stored
	csv := filepath.Join(t.TempDir(), "calendar.csv")
	os.WriteFile(csv, []byte(`domain,expiry,mode,registrant_name,registrant_email,language,order_id,brand
good.example,2099-12-31,renew,Ann,ann@example.org,en,,
bad.example,2099-12-31,expire,Bo \,bo@example.org,de,,
a.example,2031-01-01,renew,Ann Other,ann@mail.example,en,,
after.example,2099-12-31,expire,Cy,cy@example.org,de,,
`), 0o600)
	out, stderr, err := errpd(t, context.Background(), "import", "--bulk", "--config", cfg, csv)
	if exitCode(err) != 1 || !strings.Contains(out, "4 rows read: 2 new domains, each with its notices planned, 1 domain updated (same expiry), 1 row rejected") {
		t.Errorf("import --bulk: %q, %v (exit %d); want 2 added, 1 updated, 1 rejected, exit 1", out, err, exitCode(err))
	}
	if !strings.Contains(out, "written again in key order: 2 new domains") {
		t.Errorf("import --bulk does not say it wrote the store again:\n%s", out)
	}
	want := `calendar.csv:3: notice: the expire-reminder1 notice cannot be rendered for brand "", language "de": registrant e-mail`
	if !strings.Contains(stderr, want) {
		t.Errorf("stderr lacks %q:\n%s", want, stderr)
	}
	for _, want := range []string{"writing the store again in key order", "bulk import: store written", "percent=100"} {
		if !strings.Contains(stderr, want) {
			t.Errorf("the log lacks %q:\n%s", want, stderr)
		}
	}
	if out, _, err := errpd(t, context.Background(), "verify", "--config", cfg); err != nil || !strings.Contains(out, "ok:") {
		t.Errorf("verify after import --bulk: %v\n%s", err, out)
	}
	out, _, err = errpd(t, context.Background(), "domains", "--config", cfg)
	for _, d := range []string{"good.example", "after.example", "a.example", "b.example"} {
		if err != nil || !strings.Contains(out, d) {
			t.Errorf("domains after import --bulk lacks %s: %v\n%s", d, err, out)
		}
	}
	if strings.Contains(out, "bad.example") {
		t.Errorf("the rejected row was stored:\n%s", out)
	}
	for _, left := range []string{".loading", ".load-scratch", ".rewrite.lock"} {
		if _, err := os.Stat(path + left); err == nil {
			t.Errorf("import --bulk left %s behind", path+left)
		}
	}
	// The same file again: nothing new, so the store is not written again.
	before, _ := os.Stat(path)
	out, _, err = errpd(t, context.Background(), "import", "--bulk", "--config", cfg, csv)
	if !strings.Contains(out, "no new domain to load") || !strings.Contains(out, "3 domains unchanged") {
		t.Errorf("import --bulk of the same file: %v\n%s", err, out)
	}
	if after, _ := os.Stat(path); !os.SameFile(before, after) {
		t.Error("import --bulk of nothing new wrote the store again")
	}
}

// While the daemon holds the store, import --bulk stops at once, says to
// stop the daemon or import without --bulk, and writes nothing.
func TestImportBulkRefusesRunningDaemon(t *testing.T) {
	cfg := writeServeConfig(t, "[smtp]\noutbox_dir = \"outbox\"\n")
	serveInProcess(t, cfg)
	csv := filepath.Join(t.TempDir(), "calendar.csv")
	os.WriteFile(csv, []byte("domain,expiry,mode,registrant_name,registrant_email,language,order_id,brand\n"+
		"good.example,2099-12-31,renew,Ann,ann@example.org,en,,\n"), 0o600)
	_, _, err := errpd(t, context.Background(), "import", "--bulk", "--config", cfg, csv)
	if err == nil || !strings.Contains(err.Error(), "stop the daemon first") || !strings.Contains(err.Error(), "without --bulk") {
		t.Errorf("import --bulk while serve runs: %v; want a refusal saying to stop the daemon", err)
	}
	out, _, err := errpd(t, context.Background(), "domains", "--config", cfg)
	if err != nil || strings.Contains(out, "good.example") {
		t.Errorf("a refused bulk import stored its row: %v\n%s", err, out)
	}
	_, _, err = errpd(t, context.Background(), "import", "--bulk", "--dry-run", "--config", cfg, csv)
	if err == nil || !strings.Contains(err.Error(), "--bulk takes neither --dry-run nor --full-sync") {
		t.Errorf("import --bulk --dry-run: %v; want a refusal", err)
	}
}

// With log.format = "json" the bulk import's progress lines are JSON too.
func TestImportBulkLogsJSON(t *testing.T) {
	cfg := writeServeConfig(t, "")
	csv := filepath.Join(t.TempDir(), "calendar.csv")
	os.WriteFile(csv, []byte("domain,expiry,mode,registrant_name,registrant_email,language,order_id,brand\n"+
		"good.example,2099-12-31,renew,Ann,ann@example.org,en,,\n"), 0o600)
	_, errOut, err := errpd(t, context.Background(), "import", "--bulk", "--config", cfg, csv)
	if err != nil {
		t.Fatalf("import --bulk: %v\n%s", err, errOut)
	}
	msgs := jsonMsgs(t, errOut)
	if len(msgs) < 2 || msgs[len(msgs)-1] != "bulk import" {
		t.Errorf("import --bulk logged %q; want its progress and end", msgs)
	}
}

// An import of many new domains without --bulk says that it exists.
func TestImportHintsBulk(t *testing.T) {
	defer func(n int) { bulkHint = n }(bulkHint)
	bulkHint = 2
	cfg := testConfig(t)
	csv := filepath.Join(t.TempDir(), "calendar.csv")
	os.WriteFile(csv, []byte(`domain,expiry,mode,registrant_name,registrant_email,language,order_id,brand
a.example,2099-12-31,renew,Ann,ann@example.org,en,,
b.example,2099-12-31,renew,Bo,bo@example.org,en,,
`), 0o600)
	out, _, err := errpd(t, context.Background(), "import", "--config", cfg, csv)
	if err != nil || !strings.Contains(out, "hint: 2 new domains; errpd import --bulk") {
		t.Errorf("import of 2 new domains with the hint at 2: %v\n%s", err, out)
	}
	out, _, err = errpd(t, context.Background(), "import", "--config", cfg, csv)
	if err != nil || strings.Contains(out, "hint:") {
		t.Errorf("a re-import hints at --bulk: %v\n%s", err, out)
	}
}
