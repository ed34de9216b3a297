package app

import (
	"context"
	"errors"
	"fmt"

	"github.com/strata-es/strata/internal/platform/config"
	"github.com/strata-es/strata/internal/store/eventstore"
	"github.com/strata-es/strata/internal/transport/cli"
	"github.com/strata-es/strata/internal/transport/export"
)

// exportCmd is `strata export`: events of the global order between two bounds, to stdout or a
// file, page by page (memory does not grow with the export), resumable by position
// (internal/transport/export).
func exportCmd(ctx context.Context, env *cli.Env, args []string) error {
	var opts export.Options
	cfg, _, err := cli.Parse(env, "export", args, func(c *config.Config, fs *config.FlagSet) {
		fs.String(&opts.From, "from", "STRATA_EXPORT_FROM", "", "start after this position (exclusive), or with the first event not in the log as of this RFC 3339 time; empty: the start of the log")
		fs.String(&opts.To, "to", "STRATA_EXPORT_TO", "", "end with this position (inclusive), or with the log as of this RFC 3339 time; empty: the end of the log when the export starts")
		fs.String(&opts.Category, "category", "STRATA_EXPORT_CATEGORY", "", "only events of streams in this category")
		fs.StringList(&opts.Types, "types", "STRATA_EXPORT_TYPES", "only events of these types, comma-separated")
		fs.String(&opts.Format, "format", "STRATA_EXPORT_FORMAT", "ndjson", "ndjson (one JSON object per line) or csv (a header, then a row per event)")
		fs.String(&opts.Out, "out", "STRATA_EXPORT_OUT", "", "file to write, through FILE.partial, which becomes FILE when complete; neither may exist; empty: stdout")
		fs.Int(&opts.Batch, "batch", "STRATA_EXPORT_BATCH", 1000, fmt.Sprintf("events read per page, 1 to %d; memory grows with it, not with the export", eventstore.DefaultMaxReadCount))
		c.RegisterPersonal(fs) // to open personal fields, as allEvents shows them
	})
	if err != nil {
		return err
	}
	req, err := export.Prepare(opts)
	if err != nil {
		return exportRefused(env, err)
	}
	if _, err := cfg.PersonalDataKey(); err != nil {
		return err
	}

	logger := cli.NewLogger(cfg, env.Stderr)
	db, err := openDatabase(ctx, cfg, logger)
	if err != nil {
		return err
	}
	defer db.close(context.WithoutCancel(ctx), cfg, logger)
	store := eventstore.New(db.pool, storeOptions(cfg))
	return exportRefused(env, req.Run(ctx, store, env.Stdout, env.Stderr))
}

// exportRefused makes an export that cannot run as asked a usage error (exit code 2), saying
// why on stderr; other errors pass through.
func exportRefused(env *cli.Env, err error) error {
	var refused *export.UsageError
	if !errors.As(err, &refused) {
		return err
	}
	fmt.Fprintln(env.Stderr, "strata export:", refused.Error())
	return fmt.Errorf("%w: %s", cli.ErrUsage, refused.Error())
}
