// Package query is the read side: it answers questions from the projections' tables. Rows come
// back as the domain's states, so the GraphQL layer has one shape to translate whether a state
// was read from a projection or replayed from the log.
package query

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/strata-es/strata/internal/domain"
	"github.com/strata-es/strata/internal/domain/order"
	"github.com/strata-es/strata/internal/domain/user"
)

// Reader reads projections. It is safe for concurrent use.
type Reader struct {
	pool *pgxpool.Pool
}

// New returns a Reader on pool.
func New(pool *pgxpool.Pool) *Reader { return &Reader{pool: pool} }

const (
	userColumns  = `id::text, name, email, status, version`
	orderColumns = `id::text, customer_id::text, status, items, total, carrier, tracking_number, cancel_reason, version`
)

func scanUser(row pgx.CollectableRow) (user.State, error) {
	var s user.State
	var status string
	err := row.Scan(&s.ID, &s.Name, &s.Email, &status, &s.Version)
	s.Status = user.Status(status)
	return s, err
}

func scanOrder(row pgx.CollectableRow) (order.State, error) {
	var (
		s      order.State
		status string
		items  []byte
		total  int64
	)
	if err := row.Scan(&s.ID, &s.CustomerID, &status, &items, &total, &s.Carrier, &s.TrackingNumber, &s.CancelReason, &s.Version); err != nil {
		return s, err
	}
	s.Status, s.Total = order.Status(status), domain.Money(total)
	if err := json.Unmarshal(items, &s.Items); err != nil {
		return s, fmt.Errorf("items of order %s: %w", s.ID, err)
	}
	return s, nil
}

// UsersByID reads users by id in one statement; ids not in the projection are absent.
func (r *Reader) UsersByID(ctx context.Context, ids []string) (map[string]user.State, error) {
	rows, err := r.pool.Query(ctx, `SELECT `+userColumns+` FROM users WHERE id = ANY($1::uuid[])`, ids)
	if err != nil {
		return nil, fmt.Errorf("read users: %w", err)
	}
	list, err := pgx.CollectRows(rows, scanUser)
	if err != nil {
		return nil, fmt.Errorf("read users: %w", err)
	}
	out := make(map[string]user.State, len(list))
	for _, s := range list {
		out[s.ID] = s
	}
	return out, nil
}

// OrdersByID reads orders by id in one statement; ids not in the projection are absent.
func (r *Reader) OrdersByID(ctx context.Context, ids []string) (map[string]order.State, error) {
	rows, err := r.pool.Query(ctx, `SELECT `+orderColumns+` FROM orders WHERE id = ANY($1::uuid[])`, ids)
	if err != nil {
		return nil, fmt.Errorf("read orders: %w", err)
	}
	list, err := pgx.CollectRows(rows, scanOrder)
	if err != nil {
		return nil, fmt.Errorf("read orders: %w", err)
	}
	out := make(map[string]order.State, len(list))
	for _, s := range list {
		out[s.ID] = s
	}
	return out, nil
}

// Page selects a page in id order: First rows after the id After ("" from the start).
type Page struct {
	First int
	After string
}

// UserFilter narrows a list of users; empty fields do not narrow.
type UserFilter struct {
	Status        user.Status
	EmailContains string
}

// Users lists users in id order. It reads one row more than asked: more says there is a next
// page.
func (r *Reader) Users(ctx context.Context, f UserFilter, p Page) (list []user.State, more bool, err error) {
	rows, err := r.pool.Query(ctx, `SELECT `+userColumns+` FROM users
WHERE ($1 = '' OR id > NULLIF($1, '')::uuid) AND ($2 = '' OR status = $2) AND ($3 = '' OR email ILIKE '%' || $3 || '%' ESCAPE '\')
ORDER BY id LIMIT $4`, p.After, string(f.Status), escapeLike(f.EmailContains), p.First+1)
	if err != nil {
		return nil, false, fmt.Errorf("list users: %w", err)
	}
	list, err = pgx.CollectRows(rows, scanUser)
	if err != nil {
		return nil, false, fmt.Errorf("list users: %w", err)
	}
	if len(list) > p.First {
		return list[:p.First], true, nil
	}
	return list, false, nil
}

// OrderFilter narrows a list of orders; empty fields do not narrow.
type OrderFilter struct {
	Status     order.Status
	CustomerID string
}

// Orders lists orders in id order, as Users does.
func (r *Reader) Orders(ctx context.Context, f OrderFilter, p Page) (list []order.State, more bool, err error) {
	rows, err := r.pool.Query(ctx, `SELECT `+orderColumns+` FROM orders
WHERE ($1 = '' OR id > NULLIF($1, '')::uuid) AND ($2 = '' OR status = $2) AND ($3 = '' OR customer_id = NULLIF($3, '')::uuid)
ORDER BY id LIMIT $4`, p.After, string(f.Status), f.CustomerID, p.First+1)
	if err != nil {
		return nil, false, fmt.Errorf("list orders: %w", err)
	}
	list, err = pgx.CollectRows(rows, scanOrder)
	if err != nil {
		return nil, false, fmt.Errorf("list orders: %w", err)
	}
	if len(list) > p.First {
		return list[:p.First], true, nil
	}
	return list, false, nil
}

// OrdersOfCustomers reads a page of orders of each customer, in one statement: first+1 rows per
// customer at most (the extra row says there is a next page).
func (r *Reader) OrdersOfCustomers(ctx context.Context, customerIDs []string, p Page) (map[string][]order.State, error) {
	rows, err := r.pool.Query(ctx, `SELECT `+orderColumns+` FROM (
	SELECT o.*, row_number() OVER (PARTITION BY customer_id ORDER BY id) AS n
	FROM orders o WHERE customer_id = ANY($1::uuid[]) AND ($2 = '' OR id > NULLIF($2, '')::uuid)
) o WHERE n <= $3 ORDER BY customer_id, id`, customerIDs, p.After, p.First+1)
	if err != nil {
		return nil, fmt.Errorf("read orders of customers: %w", err)
	}
	list, err := pgx.CollectRows(rows, scanOrder)
	if err != nil {
		return nil, fmt.Errorf("read orders of customers: %w", err)
	}
	out := make(map[string][]order.State, len(customerIDs))
	for _, s := range list {
		out[s.CustomerID] = append(out[s.CustomerID], s)
	}
	return out, nil
}

// escapeLike makes s match itself literally inside a LIKE pattern.
func escapeLike(s string) string {
	return strings.NewReplacer(`\`, `\\`, `%`, `\%`, `_`, `\_`).Replace(s)
}
