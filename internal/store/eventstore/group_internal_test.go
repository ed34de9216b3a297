package eventstore

import (
	"slices"
	"testing"
)

// Conditional appends share a wave, and so a statement, unless one's condition matches an
// event of an append before it in the wave or they share a stream: then it starts the next.
func TestSplitConditionalWaves(t *testing.T) {
	t.Parallel()
	p := func(stream, typ, tag string, cond QueryItem) *pending {
		in := appendInput{types: []string{typ}, tags: [][]string{{tag}}}
		return &pending{parts: []StreamAppend{{StreamID: stream}}, inputs: []appendInput{in},
			cond: &Condition{FailIfEventsMatch: Query{Items: []QueryItem{cond}}}}
	}
	a := p("s-a", "Taken", "seat:1", QueryItem{Tags: []string{"seat:1"}})
	b := p("s-b", "Taken", "seat:2", QueryItem{Tags: []string{"seat:2"}})
	c := p("s-c", "Taken", "seat:3", QueryItem{Types: []string{"Freed"}})
	d := p("s-d", "Taken", "seat:4", QueryItem{Tags: []string{"seat:2"}}) // matches b's event
	e := p("s-e", "Taken", "seat:5", QueryItem{Tags: []string{"seat:9"}})
	f := p("s-e", "Taken", "seat:6", QueryItem{Tags: []string{"seat:8"}}) // e's stream
	g := p("s-g", "Freed", "seat:7", QueryItem{Types: []string{"Taken"}, Tags: []string{"seat:6"}})
	got := splitConditionalWaves([]*pending{a, b, c, d, e, f, g})
	want := [][]*pending{{a, b, c}, {d, e}, {f}, {g}}
	if len(got) != len(want) {
		t.Fatalf("%d waves, want %d", len(got), len(want))
	}
	for w := range want {
		if !slices.Equal(got[w], want[w]) {
			t.Errorf("wave %d holds %d appends, want %d (or others)", w, len(got[w]), len(want[w]))
		}
	}
}
