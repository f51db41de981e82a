package main

import (
	"errors"
	"fmt"
	"log/slog"

	"github.com/spf13/cobra"

	"github.com/errpd/errpd/config"
	"github.com/errpd/errpd/templates"
)

func (a *app) newTemplatesCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "templates",
		Short: "Work with the notices' templates",
		Args:  cobra.NoArgs,
	}
	cmd.AddCommand(&cobra.Command{
		Use:   "check",
		Short: "Lint the templates: every notice must use the facts ERRP requires",
		Long: `check loads the built-in templates and the partner's ([templates] dir),
test-renders each one and lints it: every notice's text and HTML bodies
(with its subject) must print each required fact on every path through
the template (docs/templates.md lists them). It prints each file that
leaves a fact out, with the facts, and exits 1 if there is one, whatever
templates.lint says.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := a.loadConfig()
			if err != nil {
				return err
			}
			set, err := templates.Load(c.Templates.Dir)
			if err != nil {
				return err
			}
			problems := set.Lint()
			for _, p := range problems {
				fmt.Fprintln(a.stdout, p.Error())
			}
			if len(problems) > 0 {
				return errRejected{fmt.Sprintf("templates: %d %s leaving out required facts", len(problems), plural(len(problems), "file", "files"))}
			}
			where := "built-in"
			if c.Templates.Dir != "" {
				where += " and " + c.Templates.Dir
			}
			fmt.Fprintf(a.stdout, "templates ok (%s): every notice uses its required facts\n", where)
			return nil
		},
	})
	return cmd
}

func plural(n int, one, many string) string {
	if n == 1 {
		return one
	}
	return many
}

// loadTemplates loads the built-in and the partner's templates and lints
// them (at start-up and on SIGHUP): with templates.lint = "refuse" a
// template that leaves out a required fact is an error naming the file
// and the facts; with "warn" each is logged.
func loadTemplates(c config.Config, log *slog.Logger) (*templates.Set, error) {
	set, err := templates.Load(c.Templates.Dir)
	if err != nil {
		return nil, err
	}
	problems := set.Lint()
	if c.Templates.Lint == "warn" {
		for _, p := range problems {
			log.Warn("template leaves out required facts (templates.lint = \"warn\")", "err", p.Error())
		}
		return set, nil
	}
	errs := make([]error, len(problems))
	for i, p := range problems {
		errs[i] = p
	}
	if err := errors.Join(errs...); err != nil {
		return nil, fmt.Errorf("%w\n(templates.lint = \"refuse\"; `errpd templates check` lists them)", err)
	}
	return set, nil
}
