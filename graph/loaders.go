package graph

import (
	"context"
	"net/http"
	"sync"
	"time"

	"github.com/graph-gophers/dataloader/v7"

	"github.com/strata-es/strata/graph/model"
	"github.com/strata-es/strata/internal/domain/order"
	"github.com/strata-es/strata/internal/domain/user"
	"github.com/strata-es/strata/internal/service"
	"github.com/strata-es/strata/internal/store/query"
	"github.com/strata-es/strata/internal/store/readmodel"
)

// loaders batch the reads of one request: every Order.customer of a response is read in one
// statement (byID, aggregate.go), every User.orders page (per page arguments) in one statement.
type loaders struct {
	// Each loader is made when first used (most requests use none): mu guards them.
	mu     sync.Mutex
	orders *dataloader.Loader[ordersKey, []order.State]
	// byID are the aggregates' loaders by id (byID), by category.
	byID map[string]any
}

// ordersKey is one User.orders field: the customer and the page asked for.
type ordersKey struct {
	customerID string
	page       query.Page
}

type loadersKey struct{}

// DefaultLoaderWait is how long a loader gathers keys before it reads, unless
// Resolver.LoaderWait says otherwise: the resolvers of one level of a response run within it.
const DefaultLoaderWait = 2 * time.Millisecond

func (r *Resolver) loaderWait() time.Duration {
	if r.LoaderWait > 0 {
		return r.LoaderWait
	}
	return DefaultLoaderWait
}

// withLoaders gives every request its own loaders, so nothing is cached across requests. A
// WebSocket connection lives long and its data changes: it gets none here, and each of its
// fields gets fresh loaders (loadersFor).
func (r *Resolver) withLoaders(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		if req.Header.Get("Upgrade") != "" {
			next.ServeHTTP(w, req)
			return
		}
		// One request: its reads share where they go (service.WithRequest).
		ctx := service.WithRequest(context.WithValue(req.Context(), loadersKey{}, r.newLoaders()))
		next.ServeHTTP(w, req.WithContext(ctx))
	})
}

func (r *Resolver) newLoaders() *loaders { return &loaders{} }

// ordersLoader is the request's loader of User.orders pages.
func (r *Resolver) ordersLoader(ctx context.Context) *dataloader.Loader[ordersKey, []order.State] {
	l := r.loadersFor(ctx)
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.orders == nil {
		l.orders = dataloader.NewBatchedLoader(r.loadOrders, dataloader.WithWait[ordersKey, []order.State](r.loaderWait()))
	}
	return l.orders
}

// loadersFor returns the request's loaders, or fresh ones where there are none.
func (r *Resolver) loadersFor(ctx context.Context) *loaders {
	if l, ok := ctx.Value(loadersKey{}).(*loaders); ok {
		return l
	}
	return r.newLoaders()
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
		m, _ := readmodel.Of(order.Definition())
		var found map[string][]readmodel.Row
		err := r.read(ctx, func(s side) (err error) {
			found, err = s.Reader.ListBy(ctx, m, "customer_id", ids, page)
			return err
		})
		for _, i := range idx {
			var list []order.State
			for _, row := range found[keys[i].customerID] {
				list = append(list, row.State.(order.State))
			}
			out[i] = &dataloader.Result[[]order.State]{Data: list, Error: err}
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
