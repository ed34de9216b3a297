package graph

import (
	"context"
	"net/http"
	"sync/atomic"
	"time"

	"github.com/graph-gophers/dataloader/v7"

	"github.com/strata-es/strata/graph/model"
	"github.com/strata-es/strata/internal/domain/order"
	"github.com/strata-es/strata/internal/domain/user"
	"github.com/strata-es/strata/internal/query"
)

// loaders batch the reads of one request: every Order.customer of a response is read in one
// statement, every User.orders page (per page arguments) in one statement.
type loaders struct {
	users  *dataloader.Loader[string, *model.User]
	orders *dataloader.Loader[ordersKey, []order.State]
	// primary is set once the request went to the primary for consistentWith: the rest of it
	// reads there too (replica.go).
	primary atomic.Bool
}

// ordersKey is one User.orders field: the customer and the page asked for.
type ordersKey struct {
	customerID string
	page       query.Page
}

type loadersKey struct{}

// loaderWait is how long a loader gathers keys before it reads: the resolvers of one level of a
// response run within it.
const loaderWait = 2 * time.Millisecond

// withLoaders gives every request its own loaders, so nothing is cached across requests. A
// WebSocket connection lives long and its data changes: it gets none here, and each of its
// fields gets fresh loaders (loadersFor).
func (r *Resolver) withLoaders(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		if req.Header.Get("Upgrade") != "" {
			next.ServeHTTP(w, req)
			return
		}
		next.ServeHTTP(w, req.WithContext(context.WithValue(req.Context(), loadersKey{}, r.newLoaders())))
	})
}

func (r *Resolver) newLoaders() *loaders {
	return &loaders{
		users:  dataloader.NewBatchedLoader(r.loadUsers, dataloader.WithWait[string, *model.User](loaderWait)),
		orders: dataloader.NewBatchedLoader(r.loadOrders, dataloader.WithWait[ordersKey, []order.State](loaderWait)),
	}
}

// loadersFor returns the request's loaders, or fresh ones where there are none.
func (r *Resolver) loadersFor(ctx context.Context) *loaders {
	if l, ok := ctx.Value(loadersKey{}).(*loaders); ok {
		return l
	}
	return r.newLoaders()
}

// loadUsers reads users from the projection in one statement. A user the projection has not
// reached yet (just registered) is replayed from its stream, so a customer is never missing.
func (r *Resolver) loadUsers(ctx context.Context, ids []string) []*dataloader.Result[*model.User] {
	out := make([]*dataloader.Result[*model.User], len(ids))
	var (
		found   map[string]user.State
		missing = map[string]user.State{}
	)
	err := r.read(ctx, func(s side) (err error) {
		if found, err = s.reader.UsersByID(ctx, ids); err != nil {
			return err
		}
		// A user the projection has not reached yet is replayed where the projection was read.
		for _, id := range ids {
			if _, ok := found[id]; !ok {
				if missing[id], err = s.commands.LoadUser(ctx, id); err != nil {
					return err
				}
			}
		}
		return nil
	})
	for i, id := range ids {
		switch s, ok := found[id]; {
		case err != nil:
			out[i] = &dataloader.Result[*model.User]{Error: err}
		case ok:
			out[i] = &dataloader.Result[*model.User]{Data: toUser(s)}
		default:
			switch s := missing[id]; {
			case !s.Exists():
				out[i] = &dataloader.Result[*model.User]{}
			default:
				out[i] = &dataloader.Result[*model.User]{Data: toUser(s)}
			}
		}
	}
	return out
}

// loadOrders reads the orders pages of many customers: one statement per distinct page.
func (r *Resolver) loadOrders(ctx context.Context, keys []ordersKey) []*dataloader.Result[[]order.State] {
	out := make([]*dataloader.Result[[]order.State], len(keys))
	byPage := map[query.Page][]int{}
	for i, k := range keys {
		byPage[k.page] = append(byPage[k.page], i)
	}
	for page, idx := range byPage {
		ids := make([]string, len(idx))
		for j, i := range idx {
			ids[j] = keys[i].customerID
		}
		var found map[string][]order.State
		err := r.read(ctx, func(s side) (err error) {
			found, err = s.reader.OrdersOfCustomers(ctx, ids, page)
			return err
		})
		for _, i := range idx {
			out[i] = &dataloader.Result[[]order.State]{Data: found[keys[i].customerID], Error: err}
		}
	}
	return out
}

func toUser(s user.State) *model.User {
	return &model.User{ID: s.ID, Name: s.Name, Email: s.Email, Status: model.UserStatus(s.Status), Version: int(s.Version)}
}

func toOrder(s order.State) *model.Order {
	o := &model.Order{
		ID: s.ID, CustomerID: s.CustomerID, Status: model.OrderStatus(s.Status), Total: s.Total, Version: int(s.Version),
		Items: make([]*model.OrderItem, len(s.Items)),
	}
	for i, it := range s.Items {
		o.Items[i] = &model.OrderItem{Sku: it.SKU, Quantity: int(it.Quantity), UnitPrice: it.UnitPrice}
	}
	if s.Status == order.Shipped {
		o.Carrier, o.TrackingNumber = &s.Carrier, &s.TrackingNumber
	}
	if s.Status == order.Cancelled {
		o.CancelReason = &s.CancelReason
	}
	return o
}
