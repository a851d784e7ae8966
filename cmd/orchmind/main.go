package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"strings"
	"syscall"
)

// env is what a command gets from the process: standard streams, a logger,
// the environment and the version of this build. Commands never touch os.*
// streams directly so tests can run them in-process.
type env struct {
	stdin   io.Reader
	stdout  io.Writer
	stderr  io.Writer
	log     *slog.Logger
	getenv  func(string) string
	version string
}

// errUsage marks an error caused by wrong arguments (exit status 2).
var errUsage = errors.New("usage")

func main() {
	if err := setThreads(os.Getenv, os.Stderr); err != nil {
		fmt.Fprintf(os.Stderr, "orchmind: %v\n", err)
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdin, os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// run runs the command line args and returns the process exit status: 0 ok,
// 1 failure, 2 wrong usage. Errors are printed on stderr as
// "orchmind VERB: message".
func run(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	e := &env{stdin: stdin, stdout: stdout, stderr: stderr, getenv: os.Getenv, version: buildVersion()}
	e.log = slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: logLevel(e.getenv)}))
	if len(args) == 0 {
		return runBare(ctx, e, false)
	}
	if len(args) == 1 && (args[0] == "--local-only" || args[0] == "-local-only") {
		return runBare(ctx, e, true) // tests and demos run the bare node offline
	}
	root := newRoot(e)
	if args == nil {
		args = []string{} // cobra reads os.Args when given nil
	}
	root.SetArgs(singleDashLong(root, args))
	cmd, err := root.ExecuteContextC(ctx)
	var unknown *unknownCommandError
	switch {
	case err == nil:
		return 0
	case errors.As(err, &unknown):
		fmt.Fprintf(stderr, "orchmind: unknown command %q%s\n\n", unknown.name, unknown.suggest)
		_ = root.Help()
		return 2
	case errors.Is(err, errHelpShown):
		return 2
	}
	name := "orchmind"
	if cmd != nil {
		name = cmd.CommandPath()
	}
	fmt.Fprintf(stderr, "%s: %v\n", name, err)
	if errors.Is(err, errUsage) {
		return 2
	}
	return 1
}

func logLevel(getenv func(string) string) slog.Level {
	switch strings.ToLower(getenv("ORCHMIND_LOG")) {
	case "debug":
		return slog.LevelDebug
	case "warn":
		return slog.LevelWarn
	case "error":
		return slog.LevelError
	}
	return slog.LevelInfo
}
