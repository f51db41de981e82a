package config_test

import (
	"bytes"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/BurntSushi/toml"
	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/errpd/errpd/config"
)

// redactedLine is how the encoder writes a secret.
var redactedLine = regexp.MustCompile(`(?m)^(\s*(?:callback_token|password) = )"\[redacted\]"$`)

// encode writes a loaded config back as TOML, with its real secrets:
// Secret's MarshalText writes "[redacted]", by design.
func encode(c config.Config) ([]byte, error) {
	var b bytes.Buffer
	if err := toml.NewEncoder(&b).Encode(c); err != nil {
		return nil, err
	}
	secrets := []config.Secret{c.HTTP.CallbackToken, c.SMTP.Password, c.Ascio.Password} // in the order of the file
	i := 0
	var err error
	out := redactedLine.ReplaceAllFunc(b.Bytes(), func(line []byte) []byte {
		if i >= len(secrets) {
			return line
		}
		v, merr := toml.Marshal(map[string]string{"v": secrets[i].Reveal()})
		if merr != nil {
			err = merr
		}
		i++
		return append(redactedLine.ReplaceAll(line, []byte("$1")), bytes.TrimSpace(bytes.TrimPrefix(v, []byte("v = ")))...)
	})
	return out, err
}

// FuzzLoad loads any bytes as a config file. Properties: no panic; an
// error names the file; a config that loads has absolute paths, and
// written back as TOML it loads to the same config.
func FuzzLoad(f *testing.F) {
	example, err := os.ReadFile("../config.example.toml")
	if err != nil {
		f.Fatal(err)
	}
	for _, s := range []string{
		string(example),
		"",
		"[store]\npath = \"x.db\"\nopen_timeout = \"1s\"\n",
		"[store]\npaht = \"x.db\"\n",
		"[smtp]\nhost = \"relay.example\"\nport = 587\ntls = \"starttls\"\nusername = \"u\"\npassword = \"p@ss \\\"word\\\"\"\n",
		"[http]\nallow_from = [\"212.123.41.224/28\", \"::1/128\"]\ncallback_token = \"tok\"\n",
		"[ascio]\nendpoint = \"https://aws.demo.ascio.com/v3/AscioService.svc\"\naccount = \"a\"\npassword = \"s3cret\"\npoll_schedule = \"*/5 * * * *\"\n",
		"[policy]\nsend_hour = 9\nzone = \"Europe/Berlin\"\n[policy.windows.reminder1]\nopens_days = -40\ndeadline_days = -26\nmodes = [\"renew\"]\n",
		"[brands.other]\nfrom = \"Other <renew@other.example>\"\nrenewal_url = \"https://other.example/r\"\n",
		"[audit]\nretention = \"0s\"\nsigning_key = \"keys/evidence.pem\"\n",
		"[dispatch]\nretry_base = \"2h\"\nretry_max = \"1h\"\n",
		"[scope]\ninclude = [\"co\"]\nexclude = [\"com\"]\n",
		"[log]\nlevel = \"debug\"\nformat = \"json\"\n",
		"[smtp]\npassword = \"file:secret\"\n",
		"store = 5\n",
		"[store]\npath = \"\"\n",
		"[policy]\nzone = \"../../../etc/passwd\"\n",
		"\xff\xfe[store]",
		"[mail]\nfrom = \"=?utf-8?q?Caf=C3=A9?= <a@b.example>\"\nname = \"Café\\u0000\"\n",
	} {
		f.Add([]byte(s))
	}
	dir := f.TempDir()
	path := filepath.Join(dir, "errpd.toml")
	again := filepath.Join(dir, "again.toml")
	if err := os.WriteFile(filepath.Join(dir, "secret"), []byte("from-a-file\n"), 0o600); err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, text []byte) {
		if err := os.WriteFile(path, text, 0o600); err != nil {
			t.Fatal(err)
		}
		c, err := config.Load(path)
		if err != nil {
			if !strings.HasPrefix(err.Error(), "config "+path) {
				t.Fatalf("error %q does not name the file", err)
			}
			return
		}
		for key, p := range map[string]string{"store.path": c.Store.Path, "smtp.outbox_dir": c.SMTP.OutboxDir,
			"templates.dir": c.Templates.Dir, "audit.signing_key": c.Audit.SigningKey} {
			if p != "" && !filepath.IsAbs(p) {
				t.Fatalf("%s %q is not absolute", key, p)
			}
		}
		b, err := encode(c)
		if err != nil {
			t.Fatalf("encoding a loaded config: %v", err)
		}
		if err := os.WriteFile(again, b, 0o600); err != nil {
			t.Fatal(err)
		}
		back, err := config.Load(again)
		if err != nil {
			t.Fatalf("the loaded config, written back, does not load: %v\n%s", err, b)
		}
		if diff := cmp.Diff(c, back, cmpopts.EquateEmpty()); diff != "" {
			t.Fatalf("the loaded config, written back, loads otherwise (-first +again):\n%s", diff)
		}
	})
}
