// Package query is the read side: it answers questions from the projections' tables. Rows come
// back as the domain's states, so the GraphQL layer has one shape to translate whether a state
// was read from a projection or replayed from the log.
package query

import (
	"context"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/strata-es/strata/internal/store/readmodel"
)

// Reader reads projections. It is safe for concurrent use.
type Reader struct {
	pool *pgxpool.Pool
}

// New returns a Reader on pool.
func New(pool *pgxpool.Pool) *Reader { return &Reader{pool: pool} }

// Page selects a page in id order: First rows after the id After ("" from the start).
type Page = readmodel.Page

// ByID reads rows of read model m by id in one statement; ids without a row are absent.
func (r *Reader) ByID(ctx context.Context, m readmodel.Model, ids []string) (map[string]readmodel.Row, error) {
	return m.ByID(ctx, r.pool, ids)
}

// List reads a page of read model m in id order, narrowed by filters; more says there is a
// next page.
func (r *Reader) List(ctx context.Context, m readmodel.Model, filters readmodel.Filters, p Page) (list []readmodel.Row, more bool, err error) {
	return m.List(ctx, r.pool, filters, p)
}

// ListBy reads a page of read model m for each of keys, values of column (the orders of many
// customers), in one statement.
func (r *Reader) ListBy(ctx context.Context, m readmodel.Model, column string, keys []string, p Page) (map[string][]readmodel.Row, error) {
	return m.ListBy(ctx, r.pool, column, keys, p)
}
