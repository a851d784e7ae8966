package main

import (
	"errors"
	"fmt"
	"strings"
	"text/template"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
)

// verbs lists the constructors of every top-level verb; each verb lives in
// its own file. A new verb is one more line here.
var verbs = []func(*env) *cobra.Command{
	adaptersCmd,
	chatCmd,
	configCmd,
	exportCmd,
	generateCmd,
	modelCmd,
	nodeCmd,
	peersCmd,
	publishCmd,
	pullCmd,
	roomCmd,
	searchCmd,
	serveCmd,
	trainCmd,
	uiCmd,
	versionCmd,
}

// newRoot builds the command tree for one run: the verbs, cobra's help and
// completion commands, and --version.
func newRoot(e *env) *cobra.Command {
	root := &cobra.Command{
		Use:   "orchmind <command> [flags]",
		Short: "train, share and use small specialist LoRA adapters, peer to peer",
		Long: "orchmind " + e.version + " — train, share and use small specialist LoRA adapters, peer to peer.\n\n" +
			"Environment: ORCHMIND_HOST is the node that publish, search, pull, peers and ui talk to\n" +
			"(host:port or a URL, as OLLAMA_HOST); ORCHMIND_HOME is the node's data folder;\n" +
			"ORCHMIND_LOG is debug, warn or error; ORCHMIND_THREADS is how many threads train and\n" +
			"generate (default: one per physical core, performance cores only on hybrid chips).",
		Version:                    e.version,
		SuggestionsMinimumDistance: 2,
		SilenceErrors:              true,
		SilenceUsage:               true,
		DisableFlagsInUseLine:      true,
		Args: func(c *cobra.Command, args []string) error {
			if len(args) > 0 {
				return &unknownCommandError{name: args[0], suggest: suggestions(c, args[0])}
			}
			return nil
		},
		RunE: func(c *cobra.Command, _ []string) error {
			_ = c.Help()
			return errHelpShown
		},
	}
	root.SetIn(e.stdin)
	root.SetOut(e.stdout)
	root.SetErr(e.stderr)
	root.SetVersionTemplate("orchmind {{.Version}}\n")
	root.SetHelpFunc(func(c *cobra.Command, _ []string) {
		if err := helpTemplate.Execute(c.ErrOrStderr(), c); err != nil {
			fmt.Fprintf(c.ErrOrStderr(), "orchmind: help: %v\n", err)
		}
	})
	root.SetFlagErrorFunc(func(c *cobra.Command, err error) error {
		return fmt.Errorf("%w: %v (see %s --help)", errUsage, err, c.CommandPath())
	})
	for _, v := range verbs {
		root.AddCommand(v(e))
	}
	// Made now rather than inside Execute, so that the tree (walked by
	// the tests) is whole before it runs.
	root.InitDefaultHelpCmd()
	root.InitDefaultCompletionCmd()
	for _, c := range root.Commands() {
		switch c.Name() {
		case "completion":
			c.Short = "print the shell completion script: completion bash|zsh|fish|powershell"
		case "help":
			c.Short = "the help of a command: help COMMAND [SUBCOMMAND]"
		}
	}
	return root
}

// helpTemplate is the --help text of every command; it goes to stderr, as
// the flag package's did.
var helpTemplate = template.Must(template.New("help").Funcs(template.FuncMap{
	"rpad": func(s string, n int) string { return fmt.Sprintf("%-*s", n, s) },
	"trim": func(s string) string { return strings.TrimRight(s, " \n") },
}).Parse(`{{with or .Long .Short}}{{trim .}}

{{end}}Usage: {{.UseLine}}
{{- if .HasAvailableSubCommands}}

Commands:
{{- range .Commands}}{{if .IsAvailableCommand}}
  {{rpad .Name .NamePadding}}  {{.Short}}{{end}}{{end}}{{end}}
{{- if .HasAvailableLocalFlags}}

Flags:
{{trim .LocalFlags.FlagUsages}}{{end}}
{{- if .HasAvailableInheritedFlags}}

Global flags:
{{trim .InheritedFlags.FlagUsages}}{{end}}
{{- if .HasExample}}

Examples:
{{.Example}}{{end}}
{{- if .HasAvailableSubCommands}}

Run '{{.CommandPath}} <command> --help' for the flags of a command.{{end}}
`))

// errHelpShown ends a run whose help was printed because the command line
// was incomplete (exit status 2, nothing more printed).
var errHelpShown = errors.New("help shown")

// unknownCommandError is a verb that does not exist.
type unknownCommandError struct{ name, suggest string }

func (u *unknownCommandError) Error() string { return fmt.Sprintf("unknown command %q", u.name) }

func suggestions(c *cobra.Command, arg string) string {
	if s := c.SuggestionsFor(arg); len(s) > 0 {
		return " (did you mean " + strings.Join(s, " or ") + "?)"
	}
	return ""
}

// parentCmd is a verb with sub-verbs (model info, model convert …). Run
// bare or with an unknown sub-verb it is a usage error saying what to use.
func parentCmd(use, short, bare, unknownFmt string, subs ...*cobra.Command) *cobra.Command {
	c := &cobra.Command{
		Use:                   use,
		Short:                 short,
		DisableFlagsInUseLine: true,
		Args:                  cobra.ArbitraryArgs,
		RunE: func(_ *cobra.Command, args []string) error {
			if len(args) == 0 {
				return fmt.Errorf("%w: %s", errUsage, bare)
			}
			return fmt.Errorf("%w: "+unknownFmt, errUsage, args[0])
		},
	}
	c.AddCommand(subs...)
	return c
}

// verb returns a command with the house settings: Use is the synopsis
// shown after "Usage:" (its first word is the verb's name), args checks
// the positional arguments. The caller adds flags, then sets RunE.
func verb(use, short string, args cobra.PositionalArgs) *cobra.Command {
	return &cobra.Command{Use: use, Short: short, Args: args, DisableFlagsInUseLine: true}
}

// noArgs refuses positional arguments: a verb that takes none says so
// rather than dropping them.
func noArgs(_ *cobra.Command, args []string) error {
	if len(args) > 0 {
		return fmt.Errorf("%w: unexpected argument %q (this command takes only flags)", errUsage, args[0])
	}
	return nil
}

// singleDashLong rewrites -name and -name=value to --name… when name is a
// long flag of the command that args run, so that command lines written
// for the flag package (which took both spellings) keep working under
// pflag, which reads -abc as the short flags a, b and c.
func singleDashLong(root *cobra.Command, args []string) []string {
	c, _, err := root.Find(args)
	if err != nil || c == nil {
		return args
	}
	c.InitDefaultHelpFlag()
	lookup := func(name string) *pflag.Flag {
		if f := c.Flags().Lookup(name); f != nil {
			return f
		}
		return c.InheritedFlags().Lookup(name)
	}
	out := make([]string, len(args))
	copy(out, args)
	for i := 0; i < len(out); i++ {
		a := out[i]
		if a == "--" {
			break
		}
		if len(a) < 2 || a[0] != '-' {
			continue
		}
		long := strings.HasPrefix(a, "--")
		name, _, hasValue := strings.Cut(strings.TrimLeft(a, "-"), "=")
		var f *pflag.Flag
		switch {
		case long:
			f = lookup(name)
		case len(name) == 1:
			f = c.Flags().ShorthandLookup(name)
			if f == nil {
				f = c.InheritedFlags().ShorthandLookup(name)
			}
		default:
			if f = lookup(name); f != nil {
				out[i] = "-" + a
			}
		}
		if f != nil && !hasValue && f.NoOptDefVal == "" {
			i++ // the next argument is this flag's value
		}
	}
	return out
}
