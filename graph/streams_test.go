package graph_test

import (
	"encoding/json"
	"slices"
	"testing"

	"github.com/strata-es/strata/graph"
	"github.com/strata-es/strata/internal/store/eventstore"
)

// streams lists stream ids by prefix and by category in byte order, and keyset paging with
// endCursor walks each match once, also past ids that sort next to the matches but do not
// match (order_x, orderly-1, ordes-1), and ids beyond ASCII.
func TestStreamsByPrefixAndCategoryPaged(t *testing.T) {
	t.Parallel()
	srv, store := newServer(t, 3)
	ids := []string{"order-10", "order-2", "order-1", "order", "order_x", "orderly-1", "ordes-1", "user-1", "ordé-1", "order-1-a"}
	for _, id := range ids {
		if _, err := store.Append(t.Context(), id, eventstore.NoStream(),
			[]eventstore.EventData{{Type: "Made", Data: json.RawMessage(`{}`)}}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := store.DeleteStream(t.Context(), "order-2", eventstore.Any()); err != nil {
		t.Fatal(err)
	}

	const q = `query($p: String, $c: String, $n: Int, $a: String) {
  streams(prefix: $p, category: $c, first: $n, after: $a) {
    edges { cursor node { id version deleted } }
    pageInfo { hasNextPage endCursor }
  }
}`
	type page struct {
		Streams struct {
			Edges []struct {
				Cursor string
				Node   struct {
					ID      string
					Version int
					Deleted bool
				}
			}
			PageInfo struct {
				HasNextPage bool
				EndCursor   *string
			}
		}
	}
	// walk pages through every match, two at a time, and returns the ids in order.
	walk := func(t *testing.T, vars map[string]any) (got []string, deleted []string) {
		t.Helper()
		vars["n"] = 2
		for range 20 {
			r := post(t, srv.URL, q, vars)
			if len(r.Errors) > 0 {
				t.Fatalf("errors: %+v", r.Errors)
			}
			var p page
			if err := json.Unmarshal(r.Data, &p); err != nil {
				t.Fatal(err)
			}
			for _, e := range p.Streams.Edges {
				if e.Cursor != e.Node.ID {
					t.Errorf("edge cursor %q, want the id %q", e.Cursor, e.Node.ID)
				}
				got = append(got, e.Node.ID)
				if e.Node.Deleted {
					deleted = append(deleted, e.Node.ID)
				}
			}
			if !p.Streams.PageInfo.HasNextPage {
				return got, deleted
			}
			vars["a"] = *p.Streams.PageInfo.EndCursor
		}
		t.Fatal("more than 20 pages")
		return nil, nil
	}
	tests := []struct {
		name string
		vars map[string]any
		want []string
	}{
		{"prefix", map[string]any{"p": "order-1"}, []string{"order-1", "order-1-a", "order-10"}},
		{"category", map[string]any{"c": "order"}, []string{"order", "order-1", "order-1-a", "order-10", "order-2"}},
		{"prefix and category", map[string]any{"p": "order-", "c": "order"}, []string{"order-1", "order-1-a", "order-10", "order-2"}},
		{"prefix and category apart", map[string]any{"p": "user-", "c": "order"}, nil},
		{"a category is the whole part before '-'", map[string]any{"c": "orde"}, nil},
		{"prefix beyond ASCII", map[string]any{"p": "ordé"}, []string{"ordé-1"}},
		{"no match", map[string]any{"p": "zzz"}, nil},
		{"everything", map[string]any{}, []string{"order", "order-1", "order-1-a", "order-10", "order-2", "order_x", "orderly-1", "ordes-1", "ordé-1", "user-1"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, deleted := walk(t, tt.vars)
			if !slices.Equal(got, tt.want) {
				t.Errorf("streams = %q, want %q", got, tt.want)
			}
			wantDeleted := []string(nil)
			if slices.Contains(tt.want, "order-2") {
				wantDeleted = []string{"order-2"}
			}
			if !slices.Equal(deleted, wantDeleted) {
				t.Errorf("deleted streams = %q, want %q", deleted, wantDeleted)
			}
		})
	}

	bad := []struct {
		name string
		vars map[string]any
	}{
		{"category with a dash", map[string]any{"c": "order-1"}},
		{"first above the cap", map[string]any{"n": 4}},
		{"first zero", map[string]any{"n": 0}},
	}
	for _, tt := range bad {
		t.Run(tt.name, func(t *testing.T) {
			if code, _, msg := gqlErr(t, post(t, srv.URL, q, tt.vars)); code != graph.CodeBadUserInput {
				t.Errorf("code %s (%s), want %s", code, msg, graph.CodeBadUserInput)
			}
		})
	}
}
