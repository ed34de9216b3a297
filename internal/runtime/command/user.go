package command

import (
	"context"
	"errors"

	"github.com/strata-es/strata/internal/domain"
	"github.com/strata-es/strata/internal/domain/user"
	"github.com/strata-es/strata/internal/store/eventstore"
)

// Users is the runtime of the User aggregate on h.
func (h *Handler) Users() Aggregate[user.State, user.Event, user.Command] {
	return For(h, user.Definition())
}

// UserResult is a user after a command, the position of the user's last event (zero in a dry
// run), and the events the command appended (or would append).
type UserResult struct {
	User     user.State
	Position eventstore.Position
	Events   []Planned
	DryRun   bool
}

// LoadUser replays a user's events. A user that does not exist is the zero State.
func (h *Handler) LoadUser(ctx context.Context, id string) (user.State, error) {
	return h.UserUntil(ctx, id, Until{})
}

// UserUntil replays a user's events up to u; a user that did not exist then is the zero State.
func (h *Handler) UserUntil(ctx context.Context, id string, u Until) (user.State, error) {
	l, err := h.Users().Until(ctx, id, u)
	return l.State, err
}

// UserHistory returns every event of a user with the state after it, in version order.
func (h *Handler) UserHistory(ctx context.Context, id string) ([]Step[user.State], error) {
	return h.Users().History(ctx, id)
}

// EmailCategory is the category of email addresses among held values (values.go): an event
// that gives a user an address carries ValueTag(EmailCategory, the normalised address), one
// that frees it ReleasedTag(...). The tags hold a hash of the address, never the address.
const EmailCategory = user.EmailTagCategory

// emailValue is an address as a held value, with its claim stream of old.
func emailValue(email string) value {
	return value{category: EmailCategory, key: user.NormalizeEmail(email), claims: user.ClaimStreamID(email), owner: user.Category,
		holder: func(e eventstore.RecordedEvent) (string, bool, error) {
			c, err := user.ClaimState{}.ApplyClaim(e.Type, e.Data)
			return c.Holder, e.Type == user.TypeEmailClaimed, err
		}}
}

// claimCache is the read of an address's holder one attempt of a command made: the condition
// of its write keeps that read true.
type claimCache struct {
	h     *Handler
	email string // normalised
	read  *held
}

func (c *claimCache) get(ctx context.Context, email string) (user.ClaimState, error) {
	key := user.NormalizeEmail(email)
	if c.read == nil {
		r, err := c.h.readHolders(ctx, []value{emailValue(email)})
		if err != nil {
			return user.ClaimState{}, err
		}
		c.email, c.read = key, &r
	} else if c.email != key {
		return user.ClaimState{}, errors.New("command: one attempt reads the holder of one address")
	}
	return user.ClaimState{Holder: c.read.holderOf(EmailCategory, key)}, nil
}

// RegisterUser registers a new user with a fresh id.
func (h *Handler) RegisterUser(ctx context.Context, name, email string) (UserResult, error) {
	id, err := NewID()
	if err != nil {
		return UserResult{}, err
	}
	return h.userCommand(ctx, "registerUser", id, true, nil, func(_ user.State, claims *claimCache) (user.Command, error) {
		c, err := claims.get(ctx, email)
		return user.Register{ID: id, Name: name, Email: email, EmailHolder: c.Holder}, err
	})
}

// ChangeUserEmail gives a user a new address. expected, when set, is the version the caller saw.
func (h *Handler) ChangeUserEmail(ctx context.Context, id, email string, expected *int64) (UserResult, error) {
	return h.userCommand(ctx, "changeUserEmail", id, false, expected, func(_ user.State, claims *claimCache) (user.Command, error) {
		c, err := claims.get(ctx, email)
		return user.ChangeEmail{Email: email, EmailHolder: c.Holder}, err
	})
}

// RenameUser gives a user a new name.
func (h *Handler) RenameUser(ctx context.Context, id, name string, expected *int64) (UserResult, error) {
	return h.userCommand(ctx, "renameUser", id, false, expected, func(user.State, *claimCache) (user.Command, error) {
		return user.Rename{Name: name}, nil
	})
}

// DeactivateUser deactivates a user and frees their address.
func (h *Handler) DeactivateUser(ctx context.Context, id string, expected *int64) (UserResult, error) {
	return h.userCommand(ctx, "deactivateUser", id, false, expected, func(user.State, *claimCache) (user.Command, error) {
		return user.Deactivate{}, nil
	})
}

// ForgetUser shreds a user's personal data: in one transaction it appends UserForgotten (with
// the release of the user's address) and deletes the user's key and snapshots, after which
// every read shows the user's name and email as domain.Redacted; the events themselves, and
// their order, stay. Forgetting a user again appends nothing and deletes the key and snapshots
// again, which is harmless.
func (h *Handler) ForgetUser(ctx context.Context, id string) (UserResult, error) {
	res, err := h.userCommand(ctx, "forgetUser", id, false, nil, func(user.State, *claimCache) (user.Command, error) {
		return user.Forget{}, nil
	})
	var broken *domain.InvariantError
	if !errors.As(err, &broken) || broken.Rule != "user-forgotten" {
		return res, err
	}
	if !h.dryRun {
		if err := h.store.Forget(ctx, id, user.StreamID(id)); err != nil {
			return UserResult{}, err
		}
	}
	s, err := h.LoadUser(ctx, id)
	if err != nil {
		return UserResult{}, err
	}
	return UserResult{User: s, DryRun: h.dryRun}, nil
}

// userCommand runs a command on the User aggregate: build makes it from the loaded state, and
// the user's events are appended together with the claim changes they imply, each stream at the
// version it was read at.
func (h *Handler) userCommand(ctx context.Context, name, id string, isNew bool, expected *int64, build func(user.State, *claimCache) (user.Command, error)) (UserResult, error) {
	var claims *claimCache
	res, err := h.Users().Execute(ctx, Call[user.State, user.Command]{Name: name, ID: id, New: isNew, Expected: expected,
		Prepare: func(_ context.Context, l Loaded[user.State], w *Write) (user.Command, error) {
			claims = &claimCache{h: h}
			cmd, err := build(l.State, claims)
			if _, ok := cmd.(user.Forget); ok {
				w.Forget(id)
			}
			return cmd, err
		},
		Then: func(ctx context.Context, _ Loaded[user.State], events []domain.Event, w *Write) error {
			var decided []user.Event
			for _, e := range events {
				decided = append(decided, e.(user.Event))
			}
			change := user.Claims(decided)
			if change.Release != "" {
				w.Tag(ReleasedTag(EmailCategory, user.NormalizeEmail(change.Release)))
			}
			if change.Claim != "" {
				// The address's holder was read when the command was made (build): the write
				// fails, and the command is tried again, if it changed hands since.
				if _, err := claims.get(ctx, change.Claim); err != nil {
					return err
				}
				w.Tag(ValueTag(EmailCategory, user.NormalizeEmail(change.Claim)))
				w.Require(claims.read.condition())
			}
			return nil
		},
	})
	if errors.Is(err, eventstore.ErrForgotten) {
		// Forgotten between this command's load and its write.
		return UserResult{}, domain.Broken("user-forgotten", "user %s has been forgotten", id)
	}
	return UserResult{User: res.State, Position: res.Position, Events: res.Events, DryRun: res.DryRun}, err
}
