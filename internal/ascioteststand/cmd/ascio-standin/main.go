// Command ascio-standin runs the Ascio stand-in on its own, for end-to-end
// runs of errpd serve: it prints its endpoint URL on the first line of
// stdout and serves until SIGINT or SIGTERM. A seed file (JSON) fills its
// queue, orders and domains.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/errpd/errpd/ascio"
	"github.com/errpd/errpd/internal/ascioteststand"
)

// seed is the -seed file's shape.
type seed struct {
	Messages []ascio.QueueMessage `json:"messages"`
	Orders   []ascio.Order        `json:"orders"`
	Domains  []ascio.Domain       `json:"domains"`
}

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "ascio-standin:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet("ascio-standin", flag.ContinueOnError)
	listen := fs.String("listen", "127.0.0.1:0", "address to listen on")
	seedFile := fs.String("seed", "", "JSON file with messages, orders and domains")
	account := fs.String("account", "", "required account (empty: any)")
	script := fs.String("script", "", "answers for UploadMessage, comma separated: ResultCodes, or stall, lost, fault, redirect, truncated, html, empty, wrong-namespace, missing, huge-fault, huge-result, endless")
	if err := fs.Parse(args); err != nil {
		return err
	}
	s, err := ascioteststand.New()
	if err != nil {
		return err
	}
	defer s.Close()
	s.Account, s.Password = *account, os.Getenv("ASCIO_STANDIN_PASSWORD")
	if *seedFile != "" {
		b, err := os.ReadFile(*seedFile)
		if err != nil {
			return err
		}
		var sd seed
		if err := json.Unmarshal(b, &sd); err != nil {
			return fmt.Errorf("%s: %w", *seedFile, err)
		}
		for _, m := range sd.Messages {
			s.AddMessage(m)
		}
		for _, o := range sd.Orders {
			s.AddOrder(o)
		}
		for _, d := range sd.Domains {
			s.AddDomain(d)
		}
	}
	for _, a := range strings.FieldsFunc(*script, func(r rune) bool { return r == ',' }) {
		n, err := ascioteststand.ParseAnswer(a)
		if err != nil {
			return fmt.Errorf("-script: %w", err)
		}
		s.Script(ascioteststand.OpUploadMessage, n)
	}
	ln, err := net.Listen("tcp", *listen)
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "http://%s/v3/AscioService.svc\n", ln.Addr())
	srv := &http.Server{Handler: s}
	go func() {
		<-ctx.Done()
		s.Release()
		srv.Close()
	}()
	if err := srv.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	if bad := s.Invalid(); len(bad) > 0 {
		return fmt.Errorf("%d documents did not validate:\n%s", len(bad), strings.Join(bad, "\n"))
	}
	return nil
}
