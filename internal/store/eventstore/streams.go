package eventstore

import (
	"context"
	"fmt"
	"strings"
	"unicode/utf8"

	"github.com/jackc/pgx/v5"

	"github.com/strata-es/strata/internal/store/pgsql"
)

// ListStreamsOptions selects streams in id order (byte order).
type ListStreamsOptions struct {
	// Prefix, when set, keeps only streams whose id starts with it.
	Prefix string
	// Category, when set, keeps only streams of that category (the id's part before the first '-').
	Category string
	// After is the id to list after (exclusive): the last id of the page before.
	After string
	// Max is the most streams to return: 1 to the store's MaxReadCount.
	Max int
}

// ListStreams returns streams in byte order of their ids, deleted ones included (Deleted says
// so). Paging with After set to the last id returned walks every stream once.
func (s *Store) ListStreams(ctx context.Context, opts ListStreamsOptions) ([]StreamInfo, error) {
	if opts.Max < 1 || opts.Max > s.opts.MaxReadCount {
		return nil, &ValidationError{Field: "first", Reason: fmt.Sprintf("%d is outside 1..%d", opts.Max, s.opts.MaxReadCount)}
	}
	for _, f := range []struct{ name, value string }{{"prefix", opts.Prefix}, {"category", opts.Category}, {"after", opts.After}} {
		if f.value == "" {
			continue
		}
		if err := validateName(f.name, f.value, MaxStreamIDLen); err != nil {
			return nil, err
		}
	}
	if strings.Contains(opts.Category, "-") {
		return nil, &ValidationError{Field: "category", Reason: "must not contain '-': a category is the part of a stream id before the first '-'"}
	}
	// The range is where the prefix's and the category's ranges meet (byte order is Go's
	// string order).
	lo, hi := opts.Prefix, prefixEnd(opts.Prefix)
	if c := opts.Category; c != "" {
		lo = max(lo, c)
		if hi == "" || c+"." < hi {
			hi = c + "." // '.' follows '-': c-… sorts before c.
		}
	}
	// Planned for its parameters every time: a generic plan cannot know how wide the range is
	// (pgsql.EventstoreListStreams).
	args := []any{pgx.QueryExecModeExec, opts.After, opts.Prefix, opts.Category, opts.Max}
	sql := pgsql.EventstoreListStreams
	if hi != "" {
		sql = pgsql.EventstoreListStreamsInRange
		args = append(args, lo, hi)
	}
	rows, err := s.pool.Query(ctx, sql, args...)
	if err != nil {
		return nil, fmt.Errorf("list streams: %w", err)
	}
	defer rows.Close()
	var out []StreamInfo
	for rows.Next() {
		var (
			info StreamInfo
			md   storedMetadata
		)
		if err := rows.Scan(&info.ID, &info.Version, &info.Deleted, &md); err != nil {
			return nil, fmt.Errorf("list streams: %w", err)
		}
		info.Metadata = md.metadata()
		out = append(out, info)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("list streams: %w", err)
	}
	return out, nil
}

// prefixEnd is the least string above every string that starts with p, in byte order (which
// is code point order in UTF-8): p with its last code point raised by one, dropping trailing
// code points that cannot be raised. "" means there is none (p is empty, or all maximal).
func prefixEnd(p string) string {
	for p != "" {
		r, size := utf8.DecodeLastRuneInString(p)
		p = p[:len(p)-size]
		next := r + 1
		if next >= 0xD800 && next <= 0xDFFF { // surrogates are no code points of their own
			next = 0xE000
		}
		if next <= utf8.MaxRune {
			return p + string(next)
		}
	}
	return ""
}
