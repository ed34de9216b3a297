// Package cli is what every strata command shares: the process's environment, the error of a
// command line that could not be understood, flag parsing into a validated Config, and the
// logger the Config asks for.
package cli

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"strings"

	"github.com/strata-es/strata/internal/platform/config"
	"github.com/strata-es/strata/internal/platform/telemetry"
)

// ErrUsage marks a command line that could not be understood; what was wrong has been printed.
// The process exits with 2 on it.
var ErrUsage = errors.New("usage")

// Env is what a command receives from the process.
type Env struct {
	Stdout, Stderr io.Writer
	Getenv         func(string) string
}

// Parse parses a command's flags into a validated Config; register adds the command's own.
// A command line it cannot understand is an error wrapping ErrUsage; --help is flag.ErrHelp.
func Parse(env *Env, name string, args []string, register func(*config.Config, *config.FlagSet)) (config.Config, *config.FlagSet, error) {
	var cfg config.Config
	fs := config.NewFlagSet("strata "+name, env.Getenv, env.Stderr)
	cfg.Register(fs)
	if register != nil {
		register(&cfg, fs)
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return cfg, fs, err
		}
		return cfg, fs, fmt.Errorf("%w: %w", ErrUsage, err)
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(env.Stderr, "unexpected arguments: %s\n", strings.Join(fs.Args(), " "))
		return cfg, fs, fmt.Errorf("%w: unexpected arguments %s", ErrUsage, strings.Join(fs.Args(), " "))
	}
	if err := cfg.Validate(); err != nil {
		return cfg, fs, err
	}
	return cfg, fs, nil
}

// NewLogger is the logger cfg asks for (--log-level, --log-format), writing to w. A line logged
// with a context inside a trace carries its trace_id and span_id.
func NewLogger(cfg config.Config, w io.Writer) *slog.Logger {
	opts := &slog.HandlerOptions{Level: cfg.LogLevel}
	if cfg.LogFormat == "json" {
		return slog.New(telemetry.LogHandler(slog.NewJSONHandler(w, opts)))
	}
	return slog.New(telemetry.LogHandler(slog.NewTextHandler(w, opts)))
}
