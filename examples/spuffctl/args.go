package main

import (
	"flag"
	"strings"
)

// The standard flag package stops at the first word that is not a flag, so
// `spuffctl down web --provider hetzner` would take "--provider" for a
// machine name. spuffctl parses flags anywhere on the line instead: a word
// that starts with "-" is a flag (its value is the next word, unless the
// flag is boolean or written --flag=value), "--" ends the flags, and every
// other word is an argument. A word starting with "-" is never an argument
// unless it follows "--".

// boolFlag is the interface of the flag package's boolean flags.
type boolFlag interface{ IsBoolFlag() bool }

// scanArgs splits args into flag words (with their values) and the indexes
// of the arguments, in order. It does not check the flags: flag.Parse of
// the flag words does.
func scanArgs(fs *flag.FlagSet, args []string) (flags []string, positional []int) {
	for i := 0; i < len(args); i++ {
		a := args[i]
		if a == "--" {
			for j := i + 1; j < len(args); j++ {
				positional = append(positional, j)
			}
			break
		}
		if len(a) < 2 || a[0] != '-' {
			positional = append(positional, i)
			continue
		}
		flags = append(flags, a)
		name := strings.TrimPrefix(strings.TrimPrefix(a, "-"), "-")
		if strings.Contains(name, "=") {
			continue
		}
		f := fs.Lookup(name)
		if f == nil {
			continue // flag.Parse reports it
		}
		if b, ok := f.Value.(boolFlag); ok && b.IsBoolFlag() {
			continue
		}
		if i+1 < len(args) {
			i++
			flags = append(flags, args[i])
		}
	}
	return flags, positional
}

// parseArgs parses the flags found anywhere in args into fs and returns the
// arguments, in order.
func parseArgs(fs *flag.FlagSet, args []string) ([]string, error) {
	flags, positional := scanArgs(fs, args)
	if err := fs.Parse(flags); err != nil {
		return nil, err
	}
	out := make([]string, 0, len(positional))
	for _, i := range positional {
		out = append(out, args[i])
	}
	return out, nil
}

// splitSubcommand finds a subcommand (the first argument, wherever it is
// among the flags fs knows) and returns it with the other words. sub is ""
// when there is no argument.
func splitSubcommand(fs *flag.FlagSet, args []string) (sub string, rest []string) {
	_, positional := scanArgs(fs, args)
	if len(positional) == 0 {
		return "", args
	}
	i := positional[0]
	rest = append(append([]string(nil), args[:i]...), args[i+1:]...)
	return args[i], rest
}
