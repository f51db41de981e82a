package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
)

// TestServeLogsOnlyJSON: with log.format = "json" every line serve writes
// to stderr is JSON: the start-up's SPF/DMARC verdicts and the error that
// stops a second serve on the same store included. (Before, each failing
// sender's report was printed as plain text beside its log line, and main
// printed "errpd: ..." for the error.)
func TestServeLogsOnlyJSON(t *testing.T) {
	resolver := startDNS(t, map[string]string{
		"example.net":        "v=spf1 ip4:192.0.2.10 -all",
		"bounces.other.test": "v=spf1 ip4:192.0.2.10 -all",
	})
	cfg := writeServeConfig(t, fmt.Sprintf(`[smtp]
envelope_from = "bounces@bounces.other.test"
egress_ips = ["192.0.2.10"]
resolver = %q
`, resolver))
	logs := serveInProcess(t, cfg)

	var second bytes.Buffer
	err := run(context.Background(), []string{"serve", "--config", cfg}, &bytes.Buffer{}, &second)
	if code := finish(err, &second); code != 2 || !strings.Contains(second.String(), "in use by another errpd") {
		t.Errorf("second serve: exit %d, stderr:\n%s", code, second.String())
	}
	if !strings.Contains(logs.String(), "notices may fail SPF/DMARC") || !strings.Contains(logs.String(), "does not align") {
		t.Errorf("the failing sender is not logged with its problem:\n%s", logs)
	}
	for name, out := range map[string]string{"serve": logs.String(), "second serve": second.String()} {
		for i, line := range strings.Split(strings.TrimSpace(out), "\n") {
			if !json.Valid([]byte(line)) {
				t.Errorf("%s: stderr line %d is not JSON: %s", name, i+1, line)
			}
		}
	}
}
