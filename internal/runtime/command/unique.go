package command

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"strings"

	"github.com/strata-es/strata/internal/domain"
)

// A declared unique value (domain.Unique) is kept with tags on the holders' own events and a
// condition on them (values.go). Before tags, each key had a claim stream, "<category>-<sha-256
// of the key in hex>", whose events said which aggregate took the value and gave it up; they
// are still read.

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

// claim adds to w the tags of an aggregate going from before to after for each of its unique
// values (values.go), and the condition that keeps its read of the values' holders true, or
// returns the rule of a value another aggregate holds.
func (a Aggregate[S, E, C]) claim(ctx context.Context, id string, before Loaded[S], after S, w *Write) error {
	type change struct {
		u        domain.Unique[S]
		was, now string
	}
	var changes []change
	var values []value
	for _, u := range a.def.Unique {
		var was string
		if before.Exists() {
			was = u.Key(before.State)
		}
		now := u.Key(after)
		if was == now {
			continue
		}
		changes = append(changes, change{u: u, was: was, now: now})
		if now != "" {
			values = append(values, value{category: u.Category, key: now, claims: ClaimStreamID(u.Category, now), holder: claimHolder, owner: a.def.Category})
		}
	}
	if len(changes) == 0 {
		return nil
	}
	var read held
	if len(values) > 0 {
		var err error
		if read, err = a.h.readHolders(ctx, values); err != nil {
			return err
		}
	}
	for _, c := range changes {
		if c.now != "" {
			if held := read.holderOf(c.u.Category, c.now); held != "" && held != id {
				return domain.Broken(c.u.Rule, "%s %q is taken by %s %s", c.u.Name, c.now, strings.ToLower(a.def.Name), held)
			}
			w.Tag(ValueTag(c.u.Category, c.now))
		}
		if c.was != "" {
			w.Tag(ReleasedTag(c.u.Category, c.was))
		}
	}
	if len(values) > 0 {
		w.Require(read.condition())
	}
	return nil
}
