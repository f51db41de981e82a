// Command errpd keeps a domain reseller compliant with ICANN's Expired
// Registration Recovery Policy: it plans every expiring domain's notices,
// sends them, uploads proof to Ascio and answers auditors.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(finish(err, os.Stderr))
}

// finish prints err, unless serve has logged it already (as JSON when
// log.format says so), and returns the exit code.
func finish(err error, stderr io.Writer) int {
	if err != nil && !errors.As(err, new(errLogged)) {
		fmt.Fprintln(stderr, "errpd:", err)
	}
	return exitCode(err)
}

// run is the whole program, callable from tests.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	root := newRootCmd(stdout, stderr, args, nil, nil)
	root.SetArgs(args)
	return root.ExecuteContext(ctx)
}
