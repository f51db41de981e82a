package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/spf13/cobra"

	"github.com/errpd/errpd/evidence"
	"github.com/errpd/errpd/store"
)

func (a *app) newEvidenceCmd() *cobra.Command {
	var p periodFlags
	var output string
	cmd := &cobra.Command{
		Use:   "evidence --domain NAME [--from DATE] [--to DATE] --output FILE.zip",
		Short: "Pack a domain's notices as sent, the report rows and a signed manifest into a zip",
		Long: `evidence writes a zip with the raw .eml of each notice as sent, the report
rows (report.csv) and manifest.json listing every file's SHA-256, signed with
the Ed25519 key of audit.signing_key (manifest.sig). An auditor checks it
offline with errpd verify-evidence and the public key. Works while errpd
serve runs.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := a.loadConfig()
			if err != nil {
				return err
			}
			f, err := p.filter()
			if err != nil {
				return err
			}
			if len(f.Domains) == 0 {
				return errors.New("give at least one --domain")
			}
			if output == "" {
				return errors.New("give --output FILE.zip")
			}
			if c.Audit.SigningKey == "" {
				return errors.New("audit.signing_key is not set (errpd keygen makes a key pair)")
			}
			a.outputArg(output)
			return a.readStore(cmd.Context(), c, func(db *store.DB) error {
				key, err := evidence.LoadPrivateKey(c.Audit.SigningKey)
				if err != nil {
					return err
				}
				var m evidence.Manifest
				err = a.writeOutput(output, 0o640, func(w io.Writer) (err error) {
					m, err = evidence.Write(w, db, f, key, time.Now())
					return err
				})
				if err != nil {
					return err
				}
				fmt.Fprintf(a.stdout, "evidence written to %s: %d files, %d messages purged by retention, chain head %d %s\n",
					output, len(m.Files), len(m.Missing), m.ChainHead.Seq, m.ChainHead.Hash)
				return nil
			})
		},
	}
	p.add(cmd)
	cmd.Flags().StringVarP(&output, "output", "o", "", "the zip `FILE` to write")
	return cmd
}

func (a *app) newVerifyEvidenceCmd() *cobra.Command {
	var keyPath string
	cmd := &cobra.Command{
		Use:   "verify-evidence FILE.zip --key PUB",
		Short: "Check an evidence zip's signature and every file's hash, offline",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if keyPath == "" {
				return errors.New("give --key with the signer's public key (PEM)")
			}
			pub, err := evidence.LoadPublicKey(keyPath)
			if err != nil {
				return err
			}
			f, err := os.Open(args[0])
			if err != nil {
				return err
			}
			defer f.Close()
			info, err := f.Stat()
			if err != nil {
				return err
			}
			m, err := evidence.Verify(f, info.Size(), pub)
			if err != nil {
				return errRejected{msg: fmt.Sprintf("%s does NOT verify: %v", args[0], err)}
			}
			fmt.Fprintf(a.stdout, "%s verifies: signed manifest of %s, created %s, %d files intact, chain head %d %s\n",
				args[0], m.Domains, m.Created.Format(time.RFC3339), len(m.Files), m.ChainHead.Seq, m.ChainHead.Hash)
			for _, x := range m.Missing {
				fmt.Fprintf(a.stdout, "not included: %s (%s)\n", x.Step, x.Reason)
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&keyPath, "key", "", "the signer's Ed25519 public key `FILE` (PEM)")
	return cmd
}

func (a *app) newKeygenCmd() *cobra.Command {
	var prefix string
	cmd := &cobra.Command{
		Use:   "keygen --output PREFIX",
		Short: "Make an Ed25519 key pair for signing evidence: PREFIX.key and PREFIX.pub",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if prefix == "" {
				return errors.New("give --output PREFIX")
			}
			priv, pub, err := evidence.GenerateKey()
			if err != nil {
				return err
			}
			// O_EXCL: never overwrite a key that signed evidence already.
			for _, f := range []struct {
				path string
				body []byte
				perm os.FileMode
			}{{prefix + ".key", priv, 0o600}, {prefix + ".pub", pub, 0o644}} {
				w, err := os.OpenFile(f.path, os.O_CREATE|os.O_EXCL|os.O_WRONLY, f.perm)
				if err != nil {
					return err
				}
				_, err = w.Write(f.body)
				if cerr := w.Close(); err == nil {
					err = cerr
				}
				if err != nil {
					return err
				}
			}
			fmt.Fprintf(a.stdout, "private key %s.key (set audit.signing_key to it), public key %s.pub (give it to auditors)\n", prefix, prefix)
			return nil
		},
	}
	cmd.Flags().StringVarP(&prefix, "output", "o", "", "`PREFIX` of the two files")
	return cmd
}
