package command

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"strings"

	"github.com/strata-es/strata/internal/domain"
	"github.com/strata-es/strata/internal/store/eventstore"
)

// A declared unique value (domain.Unique) has a claim stream per key: "<category>-<sha-256 of
// the key in hex>", whose events say which aggregate took the value and gave it up. A command
// that changes the value an aggregate holds appends to the claim streams in the aggregate's own
// write, each expected at the version it was read at: of two commands that take one value, the
// second fails its append, is tried again, and then finds the value held.

// Claim event types.
const (
	TypeValueClaimed  = "ValueClaimed"
	TypeValueReleased = "ValueReleased"
)

// claimEvent is an event of a claim stream: Holder took or gave up the value.
type claimEvent struct {
	Type   string `json:"-"`
	Holder string `json:"holder"`
}

func (e claimEvent) EventType() string { return e.Type }

// ClaimStreamID is the claim stream of key among the values of category.
func ClaimStreamID(category, key string) string {
	sum := sha256.Sum256([]byte(key))
	return category + "-" + hex.EncodeToString(sum[:])
}

// holder is who holds a value ("" when nobody does) and its claim stream's version.
type holder struct {
	id      string
	version int64
}

func (h *Handler) holderOf(ctx context.Context, streamID string) (holder, error) {
	var out holder
	err := h.readAll(ctx, streamID, func(e eventstore.RecordedEvent) error {
		out.version = e.Version
		var c claimEvent
		if err := json.Unmarshal(e.Data, &c); err != nil {
			return err
		}
		switch e.Type {
		case TypeValueClaimed:
			out.id = c.Holder
		case TypeValueReleased:
			if out.id == c.Holder {
				out.id = ""
			}
		}
		return nil
	})
	return out, err
}

// claim adds to w the claim changes of an aggregate going from before to after, or returns the
// rule of a value another aggregate holds.
func (a Aggregate[S, E, C]) claim(ctx context.Context, name, id string, before Loaded[S], after S, w *Write) error {
	for _, u := range a.def.Unique {
		var was string
		if before.Exists() {
			was = u.Key(before.State)
		}
		now := u.Key(after)
		if was == now {
			continue
		}
		if now != "" {
			stream := ClaimStreamID(u.Category, now)
			held, err := a.h.holderOf(ctx, stream)
			if err != nil {
				return err
			}
			if held.id != "" && held.id != id {
				return domain.Broken(u.Rule, "%s %q is taken by %s %s", u.Name, now, strings.ToLower(a.def.Name), held.id)
			}
			if held.id != id {
				data, err := eventData(name, []claimEvent{{Type: TypeValueClaimed, Holder: id}})
				if err != nil {
					return err
				}
				w.Also(stream, held.version, data)
			}
		}
		if was != "" {
			stream := ClaimStreamID(u.Category, was)
			held, err := a.h.holderOf(ctx, stream)
			if err != nil {
				return err
			}
			if held.id == id {
				data, err := eventData(name, []claimEvent{{Type: TypeValueReleased, Holder: id}})
				if err != nil {
					return err
				}
				w.Also(stream, held.version, data)
			}
		}
	}
	return nil
}
