package command

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"slices"
	"strings"

	"github.com/strata-es/strata/internal/store/eventstore"
)

// Values that at most one aggregate holds at a time (a product's SKU, an active user's email
// address) are kept with tags on the holders' own events (docs/consistency.md): an event that
// gives its aggregate the value carries "<category>:<hash of the key>", one that gives it up
// carries "<category>:<hash of the key>:released". Who holds a value is then a query of the
// log, and a command that takes one appends under a condition on that query: of two commands
// that take one value, the second fails its condition, is tried again, and finds the value held.
// No tag spells a value out: the key is hashed, as claim streams' ids were.
//
// Claim streams ("<category>-<hash>"), how values were kept before tags, are still read: their
// events are folded with the tagged ones in the global order, so a value claimed before the
// change stays held, and is given up by a tagged event.

// ValueTag is the tag of an event that gives its aggregate the key among category's values.
func ValueTag(category, key string) string { return category + ":" + keyHash(key) }

// ReleasedTag is the tag of an event that gives up the key among category's values.
func ReleasedTag(category, key string) string { return ValueTag(category, key) + ":released" }

func keyHash(key string) string {
	sum := sha256.Sum256([]byte(key))
	return hex.EncodeToString(sum[:])
}

// value is one value a command reads the holder of.
type value struct {
	category string // of the tags
	key      string // normalised
	// claims is the value's claim stream of old, and how to read the holder from its events.
	claims string
	holder func(e eventstore.RecordedEvent) (id string, took bool, err error)
	// owner is the category of the holders' streams: a tagged event's holder is its stream's id
	// without "<owner>-".
	owner string
}

// held is who holds each value a read asked for ("" when nobody does), with the position the
// read ended at: the after of the condition that keeps the read true until the write.
type held struct {
	holders map[string]string // by ValueTag
	query   eventstore.Query
	after   eventstore.Position
}

// readHolders reads who holds each of values, in one query of the log (so that one position
// ends the read of all of them) and the values' claim streams.
func (h *Handler) readHolders(ctx context.Context, values []value) (held, error) {
	out := held{holders: map[string]string{}}
	type change struct {
		tag  string
		pos  eventstore.Position
		id   string
		took bool
	}
	var changes []change
	for _, v := range values {
		tag := ValueTag(v.category, v.key)
		out.query.Items = append(out.query.Items, eventstore.QueryItem{Tags: []string{tag}}, eventstore.QueryItem{Tags: []string{ReleasedTag(v.category, v.key)}})
		if v.claims == "" {
			continue
		}
		err := h.readAll(ctx, v.claims, func(e eventstore.RecordedEvent) error {
			id, took, err := v.holder(e)
			changes = append(changes, change{tag: tag, pos: e.Position, id: id, took: took})
			return err
		})
		if err != nil {
			return held{}, err
		}
	}
	byTag := map[string]value{}
	for _, v := range values {
		byTag[ValueTag(v.category, v.key)] = v
	}
	// Reads stop below transactions still running; the holders are read once they show the
	// last change committed, so that a command sees the commands before it.
	if last, ok, err := h.store.LastMatch(ctx, out.query); err != nil {
		return held{}, err
	} else if ok {
		readable, err := h.store.WaitReadable(ctx, last, conditionWait)
		if err != nil {
			return held{}, err
		}
		if !readable {
			return held{}, fmt.Errorf("read the holders of %d values: %w", len(values), eventstore.ErrHeldBack)
		}
	}
	for after := (eventstore.Position{}); ; {
		events, err := h.store.ReadQuery(ctx, out.query, after, 1000)
		if err != nil {
			return held{}, fmt.Errorf("read the holders of %d values: %w", len(values), err)
		}
		for _, e := range events {
			after = e.Position
			for _, tag := range e.Tags {
				base, released := strings.CutSuffix(tag, ":released")
				v, ok := byTag[base]
				if !ok {
					continue
				}
				id, ok := strings.CutPrefix(e.StreamID, v.owner+"-")
				if !ok {
					continue
				}
				changes = append(changes, change{tag: base, pos: e.Position, id: id, took: !released})
			}
		}
		if len(events) < 1000 {
			out.after = after
			break
		}
	}
	slices.SortStableFunc(changes, func(a, b change) int { return a.pos.Compare(b.pos) })
	for _, c := range changes {
		switch {
		case c.took:
			out.holders[c.tag] = c.id
		case out.holders[c.tag] == c.id:
			out.holders[c.tag] = ""
		}
	}
	return out, nil
}

// holderOf is who holds the value (category, key) in h.
func (r held) holderOf(category, key string) string { return r.holders[ValueTag(category, key)] }

// condition is the condition that fails the write when any of the read's values changed hands
// since the read.
func (r held) condition() *eventstore.Condition {
	return &eventstore.Condition{FailIfEventsMatch: r.query, After: r.after}
}

// claimHolder reads a generic claim stream's event (ValueClaimed, ValueReleased).
func claimHolder(e eventstore.RecordedEvent) (string, bool, error) {
	var c claimEvent
	if err := json.Unmarshal(e.Data, &c); err != nil {
		return "", false, err
	}
	return c.Holder, e.Type == TypeValueClaimed, nil
}
