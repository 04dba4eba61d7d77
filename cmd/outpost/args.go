package main

import (
	"errors"
	"flag"
	"fmt"
	"os"
	"strings"
	"time"
)

// Exit codes, the same for every command: 0 done, 1 the command ran and
// failed (the daemon refused, a file is unreadable, the input is bad), 2
// the command was called wrongly (an unknown or malformed flag, a missing
// or extra argument, flags that exclude each other).
const (
	exitFailure = 1
	exitUsage   = 2
)

// parseArgs parses fs's flags from args, which may have positional
// arguments before, between or after the flags ("show ID --json" and
// "show --json ID"), and returns the positional ones: at least min and
// at most max of them, else a usage error that names the first one too
// many ("send --text hello world" is an error, not "hello"). code is -1
// to go on, or the exit code (0 after --help).
func parseArgs(fs *flag.FlagSet, args []string, min, max int) (pos []string, code int) {
	for len(args) > 0 {
		if err := fs.Parse(args); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				return nil, 0
			}
			return nil, exitUsage // flag has printed the error and the usage
		}
		rest := fs.Args()
		if i := len(args) - len(rest) - 1; i >= 0 && args[i] == "--" {
			// A "--" ends the flags: the rest is positional.
			pos = append(pos, rest...)
			break
		}
		if len(rest) > 0 {
			pos = append(pos, rest[0])
			rest = rest[1:]
		}
		args = rest
	}
	if len(pos) > max {
		return nil, usageError(fs, fmt.Sprintf("unexpected argument %q", pos[max])+quoteHint(fs, pos[max:]))
	}
	if len(pos) < min {
		return nil, usageError(fs, "missing argument")
	}
	return pos, -1
}

// quoteHint suggests quoting when extra words look like the rest of a
// text given unquoted.
func quoteHint(fs *flag.FlagSet, extra []string) string {
	if fs.Lookup("text") == nil {
		return ""
	}
	for _, e := range extra {
		if strings.HasPrefix(e, "-") {
			return ""
		}
	}
	return " (a text with spaces must be quoted: --text \"hello world\")"
}

// usageError prints "outpost CMD: why" and the command's usage; it
// returns exitUsage.
func usageError(fs *flag.FlagSet, why string) int {
	fmt.Fprintf(os.Stderr, "outpost %s: %s\n", fs.Name(), why)
	fs.Usage()
	return exitUsage
}

// checkWhen checks a time flag's value the way the daemon reads it (an
// RFC 3339 time or a duration from now), so the error names the flag.
func checkWhen(flagName, v string) error {
	if v == "" {
		return nil
	}
	if _, err := time.Parse(time.RFC3339, v); err == nil {
		return nil
	}
	if _, err := time.ParseDuration(v); err == nil {
		return nil
	}
	return fmt.Errorf("--%s %q: want a time such as 2026-11-23T18:00:00+03:00 or a duration from now such as 30m", flagName, v)
}
