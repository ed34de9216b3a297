package user_test

import (
	"encoding/json"
	"errors"
	"reflect"
	"strings"
	"testing"

	"github.com/strata-es/strata/internal/domain"
	"github.com/strata-es/strata/internal/domain/user"
)

// fold applies events, in order, to the zero State.
func fold(events ...user.Event) user.State {
	var s user.State
	for _, e := range events {
		s = s.Apply(e)
	}
	return s
}

// A case reads: given these events, when this command, then these events — or this rule
// broken, or ErrNotFound.
type decideCase struct {
	name     string
	given    []user.Event
	when     user.Command
	then     []user.Event
	rule     string // the InvariantError's Rule, when the command is refused
	notFound bool   // the command is refused with ErrNotFound
}

func runDecide(t *testing.T, cases []decideCase) {
	t.Helper()
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			got, err := user.Decide(fold(tc.given...), tc.when)
			switch {
			case tc.notFound:
				if !errors.Is(err, domain.ErrNotFound) {
					t.Fatalf("Decide(%#v) = %#v, %v; want ErrNotFound", tc.when, got, err)
				}
				if errors.Is(err, domain.ErrInvariant) {
					t.Errorf("Decide(%#v): not-found error %v also matches ErrInvariant", tc.when, err)
				}
			case tc.rule != "":
				var ie *domain.InvariantError
				if !errors.As(err, &ie) {
					t.Fatalf("Decide(%#v) = %#v, %v; want rule %s broken", tc.when, got, err, tc.rule)
				}
				if ie.Rule != tc.rule {
					t.Fatalf("Decide(%#v) broke rule %q (%v), want %q", tc.when, ie.Rule, err, tc.rule)
				}
				if !errors.Is(err, domain.ErrInvariant) {
					t.Errorf("errors.Is(%v, ErrInvariant) = false", err)
				}
			default:
				if err != nil {
					t.Fatalf("Decide(%#v): %v, want %#v", tc.when, err, tc.then)
				}
				if !reflect.DeepEqual(got, tc.then) {
					t.Fatalf("Decide(%#v) = %#v, want %#v", tc.when, got, tc.then)
				}
			}
			if err != nil && got != nil {
				t.Errorf("Decide(%#v) returned events %#v with its error %v", tc.when, got, err)
			}
		})
	}
}

var (
	registered  = user.Registered{UserID: "u1", Name: "Ada Lovelace", Email: "ada@example.com"}
	deactivated = user.DeactivatedEvent{Email: "ada@example.com"}
)

func TestRegister(t *testing.T) {
	t.Parallel()
	long := strings.Repeat("é", user.MaxNameLen) // 200 characters, 400 bytes
	// 64 + 1 + 185 + 4 = 254 bytes, and one more.
	email254 := strings.Repeat("a", 64) + "@" + strings.Repeat("b", 185) + ".com"
	email255 := strings.Repeat("a", 64) + "@" + strings.Repeat("b", 186) + ".com"
	if len(email254) != user.MaxEmailLen || len(email255) != user.MaxEmailLen+1 {
		t.Fatalf("test addresses are %d and %d bytes", len(email254), len(email255))
	}
	reg := func(name, email, holder string) user.Register {
		return user.Register{ID: "u1", Name: name, Email: email, EmailHolder: holder}
	}
	runDecide(t, []decideCase{
		{name: "registers", when: reg("Ada Lovelace", "ada@example.com", ""),
			then: []user.Event{registered}},
		{name: "trims the name", when: reg("  \tAda Lovelace\n ", "ada@example.com", ""),
			then: []user.Event{registered}},
		{name: "name of 200 characters", when: reg(long, "ada@example.com", ""),
			then: []user.Event{user.Registered{UserID: "u1", Name: long, Email: "ada@example.com"}}},
		{name: "address of 254 bytes", when: reg("Ada", email254, ""),
			then: []user.Event{user.Registered{UserID: "u1", Name: "Ada", Email: email254}}},
		{name: "holder is the same user", when: reg("Ada Lovelace", "ada@example.com", "u1"),
			then: []user.Event{registered}},

		{name: "empty name", when: reg("", "ada@example.com", ""), rule: "name-valid"},
		{name: "blank name", when: reg(" \t\n ", "ada@example.com", ""), rule: "name-valid"},
		{name: "name of 201 characters", when: reg(long+"x", "ada@example.com", ""), rule: "name-valid"},
		{name: "name with NUL", when: reg("Ada\x00Lovelace", "ada@example.com", ""), rule: "name-valid"},
		{name: "name with newline", when: reg("Ada\nLovelace", "ada@example.com", ""), rule: "name-valid"},
		{name: "name with DEL", when: reg("Ada\x7fLovelace", "ada@example.com", ""), rule: "name-valid"},
		{name: "name not UTF-8", when: reg("Ada\xffLovelace", "ada@example.com", ""), rule: "name-valid"},

		{name: "email without @", when: reg("Ada", "ada.example.com", ""), rule: "email-valid"},
		{name: "empty email", when: reg("Ada", "", ""), rule: "email-valid"},
		{name: "email with display name", when: reg("Ada", "Ada <ada@example.com>", ""), rule: "email-valid"},
		{name: "email in angle brackets", when: reg("Ada", "<ada@example.com>", ""), rule: "email-valid"},
		{name: "email without dot in domain", when: reg("Ada", "ada@example", ""), rule: "email-valid"},
		{name: "email with trailing dot", when: reg("Ada", "ada@example.com.", ""), rule: "email-valid"},
		{name: "email of 255 bytes", when: reg("Ada", email255, ""), rule: "email-valid"},
		{name: "email with inner space", when: reg("Ada", "ada @example.com", ""), rule: "email-valid"},
		{name: "email with leading space", when: reg("Ada", " ada@example.com", ""), rule: "email-valid"},
		{name: "email with trailing space", when: reg("Ada", "ada@example.com ", ""), rule: "email-valid"},
		{name: "email without local part", when: reg("Ada", "@example.com", ""), rule: "email-valid"},

		{name: "email held by another user", when: reg("Ada", "ada@example.com", "u2"), rule: "email-unique"},
		{name: "registered twice", given: []user.Event{registered},
			when: reg("Ada", "ada@example.com", ""), rule: "user-new"},
		{name: "registered again after deactivation", given: []user.Event{registered, deactivated},
			when: reg("Ada", "ada@example.com", ""), rule: "user-new"},
	})
}

func TestChangeEmail(t *testing.T) {
	t.Parallel()
	runDecide(t, []decideCase{
		{name: "changes", given: []user.Event{registered},
			when: user.ChangeEmail{Email: "countess@example.org"},
			then: []user.Event{user.EmailChanged{OldEmail: "ada@example.com", NewEmail: "countess@example.org"}}},
		{name: "after an earlier change", given: []user.Event{registered,
			user.EmailChanged{OldEmail: "ada@example.com", NewEmail: "b@example.org"}},
			when: user.ChangeEmail{Email: "c@example.org"},
			then: []user.Event{user.EmailChanged{OldEmail: "b@example.org", NewEmail: "c@example.org"}}},
		{name: "holder is this user", given: []user.Event{registered},
			when: user.ChangeEmail{Email: "Ada@example.com", EmailHolder: "u1"},
			then: []user.Event{user.EmailChanged{OldEmail: "ada@example.com", NewEmail: "Ada@example.com"}}},
		{name: "held by another user", given: []user.Event{registered},
			when: user.ChangeEmail{Email: "bob@example.com", EmailHolder: "u2"}, rule: "email-unique"},
		{name: "invalid address", given: []user.Event{registered},
			when: user.ChangeEmail{Email: "Ada <ada@example.com>"}, rule: "email-valid"},
		{name: "deactivated", given: []user.Event{registered, deactivated},
			when: user.ChangeEmail{Email: "countess@example.org"}, rule: "user-active"},
		{name: "no such user", when: user.ChangeEmail{Email: "countess@example.org"}, notFound: true},
	})
}

func TestRename(t *testing.T) {
	t.Parallel()
	runDecide(t, []decideCase{
		{name: "renames", given: []user.Event{registered},
			when: user.Rename{Name: " Augusta Ada King "},
			then: []user.Event{user.Renamed{OldName: "Ada Lovelace", NewName: "Augusta Ada King"}}},
		{name: "after an earlier rename", given: []user.Event{registered,
			user.Renamed{OldName: "Ada Lovelace", NewName: "Ada"}},
			when: user.Rename{Name: "Countess"},
			then: []user.Event{user.Renamed{OldName: "Ada", NewName: "Countess"}}},
		{name: "blank name", given: []user.Event{registered}, when: user.Rename{Name: "  "}, rule: "name-valid"},
		{name: "name with control character", given: []user.Event{registered},
			when: user.Rename{Name: "A\x1bda"}, rule: "name-valid"},
		{name: "deactivated", given: []user.Event{registered, deactivated},
			when: user.Rename{Name: "Countess"}, rule: "user-active"},
		{name: "no such user", when: user.Rename{Name: "Countess"}, notFound: true},
	})
}

func TestDeactivate(t *testing.T) {
	t.Parallel()
	runDecide(t, []decideCase{
		{name: "deactivates", given: []user.Event{registered},
			when: user.Deactivate{}, then: []user.Event{user.DeactivatedEvent{Email: "ada@example.com"}}},
		{name: "frees the current address", given: []user.Event{registered,
			user.EmailChanged{OldEmail: "ada@example.com", NewEmail: "b@example.org"}},
			when: user.Deactivate{}, then: []user.Event{user.DeactivatedEvent{Email: "b@example.org"}}},
		{name: "deactivated twice", given: []user.Event{registered, deactivated},
			when: user.Deactivate{}, rule: "user-active"},
		{name: "no such user", when: user.Deactivate{}, notFound: true},
	})
}

func TestForget(t *testing.T) {
	t.Parallel()
	forgotten := user.ForgottenEvent{Email: "ada@example.com"}
	runDecide(t, []decideCase{
		{name: "releases the address of an active user", given: []user.Event{registered},
			when: user.Forget{}, then: []user.Event{forgotten}},
		{name: "a deactivated user holds no address", given: []user.Event{registered, deactivated},
			when: user.Forget{}, then: []user.Event{user.ForgottenEvent{}}},
		{name: "forgotten twice", given: []user.Event{registered, forgotten},
			when: user.Forget{}, rule: "user-forgotten"},
		{name: "no such user", when: user.Forget{}, notFound: true},
		{name: "no email change after forgetting", given: []user.Event{registered, forgotten},
			when: user.ChangeEmail{Email: "new@example.com"}, rule: "user-forgotten"},
		{name: "no rename after forgetting", given: []user.Event{registered, forgotten},
			when: user.Rename{Name: "Someone"}, rule: "user-forgotten"},
		{name: "no deactivation after forgetting", given: []user.Event{registered, forgotten},
			when: user.Deactivate{}, rule: "user-forgotten"},
		{name: "no registration again", given: []user.Event{registered, forgotten},
			when: user.Register{ID: "u1", Name: "Ada", Email: "ada@example.com"}, rule: "user-new"},
	})
	if ch := user.Claims([]user.Event{forgotten}); ch != (user.ClaimChange{Release: "ada@example.com"}) {
		t.Errorf("claims of forgetting: %+v", ch)
	}
}

// Events whose personal fields were redacted still decode, and fold into a state.
func TestRedactedEventsDecode(t *testing.T) {
	t.Parallel()
	r := `"` + domain.Redacted + `"`
	var s user.State
	for typ, data := range map[string]string{
		user.TypeRegistered:   `{"userId": "u1", "name": ` + r + `, "email": ` + r + `}`,
		user.TypeEmailChanged: `{"oldEmail": ` + r + `, "newEmail": ` + r + `}`,
		user.TypeRenamed:      `{"oldName": ` + r + `, "newName": ` + r + `}`,
		user.TypeDeactivated:  `{"email": ` + r + `}`,
		user.TypeForgotten:    `{"email": ` + r + `}`,
	} {
		e, err := user.Decode(typ, []byte(data))
		if err != nil {
			t.Fatalf("%s: %v", typ, err)
		}
		s = s.Apply(e)
	}
	if s.Version != 5 {
		t.Errorf("state %+v", s)
	}
	s = fold(registered, user.ForgottenEvent{})
	if s.Name != domain.Redacted || s.Email != domain.Redacted || s.Status != user.Forgotten {
		t.Errorf("after UserForgotten: %+v", s)
	}
}

// Every event type that carries a name or an address marks it personal.
func TestPersonalFieldsCoverNamesAndAddresses(t *testing.T) {
	t.Parallel()
	p := user.Personal()
	if p.Category != user.Category {
		t.Errorf("category %q", p.Category)
	}
	for _, e := range []user.Event{registered, user.EmailChanged{OldEmail: "a@b.c", NewEmail: "d@e.f"}, user.Renamed{OldName: "A", NewName: "B"},
		user.DeactivatedEvent{Email: "a@b.c"}, user.ForgottenEvent{Email: "a@b.c"}} {
		data, _ := json.Marshal(e)
		var m map[string]any
		_ = json.Unmarshal(data, &m)
		marked := map[string]bool{}
		for _, f := range p.Types[e.EventType()] {
			marked[f] = true
		}
		for f := range m {
			if lf := strings.ToLower(f); (strings.Contains(lf, "name") || strings.Contains(lf, "email")) && !marked[f] {
				t.Errorf("%s.%s is not marked personal", e.EventType(), f)
			}
		}
	}
}

func TestApply(t *testing.T) {
	t.Parallel()
	var s user.State
	if s.Exists() {
		t.Fatal("the zero State exists")
	}
	steps := []struct {
		e    user.Event
		want user.State
	}{
		{registered, user.State{ID: "u1", Name: "Ada Lovelace", Email: "ada@example.com", Status: user.Active, Version: 1}},
		{user.EmailChanged{OldEmail: "ada@example.com", NewEmail: "b@example.org"},
			user.State{ID: "u1", Name: "Ada Lovelace", Email: "b@example.org", Status: user.Active, Version: 2}},
		{user.Renamed{OldName: "Ada Lovelace", NewName: "Countess"},
			user.State{ID: "u1", Name: "Countess", Email: "b@example.org", Status: user.Active, Version: 3}},
		{user.DeactivatedEvent{Email: "b@example.org"},
			user.State{ID: "u1", Name: "Countess", Email: "b@example.org", Status: user.Deactivated, Version: 4}},
	}
	for i, st := range steps {
		prev := s
		s = s.Apply(st.e)
		if s != st.want {
			t.Fatalf("after event %d (%T): state %+v, want %+v", i+1, st.e, s, st.want)
		}
		if !s.Exists() {
			t.Fatalf("after event %d: Exists() = false", i+1)
		}
		if i > 0 && prev == s {
			t.Fatalf("Apply did not change state")
		}
	}
	if got := fold(registered, user.EmailChanged{OldEmail: "ada@example.com", NewEmail: "b@example.org"},
		user.Renamed{OldName: "Ada Lovelace", NewName: "Countess"}, user.DeactivatedEvent{Email: "b@example.org"}); got != s {
		t.Errorf("fold = %+v, want %+v", got, s)
	}
}

func TestDecodeRoundTrip(t *testing.T) {
	t.Parallel()
	for _, e := range []user.Event{
		registered,
		user.EmailChanged{OldEmail: "ada@example.com", NewEmail: "b@example.org"},
		user.Renamed{OldName: "Ada Lovelace", NewName: "Countess"},
		deactivated,
	} {
		t.Run(e.EventType(), func(t *testing.T) {
			t.Parallel()
			data, err := json.Marshal(e)
			if err != nil {
				t.Fatalf("marshal: %v", err)
			}
			got, err := user.Decode(e.EventType(), data)
			if err != nil {
				t.Fatalf("Decode(%s, %s): %v", e.EventType(), data, err)
			}
			if !reflect.DeepEqual(got, e) {
				t.Errorf("Decode(%s, %s) = %#v, want %#v", e.EventType(), data, got, e)
			}
		})
	}
}

func TestEventTypeNames(t *testing.T) {
	t.Parallel()
	// Stored with every event: these must never change.
	for e, want := range map[user.Event]string{
		user.Registered{}:       "UserRegistered",
		user.EmailChanged{}:     "EmailChanged",
		user.Renamed{}:          "UserRenamed",
		user.DeactivatedEvent{}: "UserDeactivated",
		user.ForgottenEvent{}:   "UserForgotten",
	} {
		if got := e.EventType(); got != want {
			t.Errorf("%T.EventType() = %q, want %q", e, got, want)
		}
	}
}

func TestDecodeJSONFieldNames(t *testing.T) {
	t.Parallel()
	got, err := user.Decode(user.TypeRegistered, []byte(`{"userId":"u1","name":"Ada","email":"ada@example.com"}`))
	if err != nil {
		t.Fatal(err)
	}
	if want := (user.Registered{UserID: "u1", Name: "Ada", Email: "ada@example.com"}); got != want {
		t.Errorf("Decode = %#v, want %#v", got, want)
	}
}

func TestDecodeRefuses(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name, typ, data string
	}{
		{"unknown type", "UserExploded", `{}`},
		{"empty type", "", `{}`},
		{"order type", "OrderCreated", `{}`},
		{"malformed registered", user.TypeRegistered, `{"userId":`},
		{"malformed email changed", user.TypeEmailChanged, `not json`},
		{"malformed renamed", user.TypeRenamed, `{"newName":42}`},
		{"malformed deactivated", user.TypeDeactivated, ``},
	} {
		if got, err := user.Decode(tc.typ, []byte(tc.data)); err == nil || got != nil {
			t.Errorf("%s: Decode(%q, %q) = %#v, %v; want nil and an error", tc.name, tc.typ, tc.data, got, err)
		}
	}
}

func TestClaims(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name   string
		events []user.Event
		want   user.ClaimChange
	}{
		{"no events", nil, user.ClaimChange{}},
		{"registered", []user.Event{registered}, user.ClaimChange{Claim: "ada@example.com"}},
		{"email changed", []user.Event{user.EmailChanged{OldEmail: "ada@example.com", NewEmail: "b@example.org"}},
			user.ClaimChange{Release: "ada@example.com", Claim: "b@example.org"}},
		{"email changed only in case", []user.Event{user.EmailChanged{OldEmail: "Ada@x.org", NewEmail: "ada@x.org"}},
			user.ClaimChange{}},
		{"deactivated", []user.Event{deactivated}, user.ClaimChange{Release: "ada@example.com"}},
		{"renamed", []user.Event{user.Renamed{OldName: "a", NewName: "b"}}, user.ClaimChange{}},
	} {
		if got := user.Claims(tc.events); got != tc.want {
			t.Errorf("%s: Claims(%#v) = %+v, want %+v", tc.name, tc.events, got, tc.want)
		}
	}
}

// Claims composes with Decide: the events of each command imply the claim changes.
func TestClaimsOfDecidedEvents(t *testing.T) {
	t.Parallel()
	events, err := user.Decide(user.State{}, user.Register{ID: "u1", Name: "Ada", Email: "ada@example.com"})
	if err != nil {
		t.Fatal(err)
	}
	if got, want := user.Claims(events), (user.ClaimChange{Claim: "ada@example.com"}); got != want {
		t.Errorf("Claims after Register = %+v, want %+v", got, want)
	}
	s := fold(registered)
	events, err = user.Decide(s, user.ChangeEmail{Email: "b@example.org"})
	if err != nil {
		t.Fatal(err)
	}
	if got, want := user.Claims(events), (user.ClaimChange{Release: "ada@example.com", Claim: "b@example.org"}); got != want {
		t.Errorf("Claims after ChangeEmail = %+v, want %+v", got, want)
	}
	events, err = user.Decide(s, user.Deactivate{})
	if err != nil {
		t.Fatal(err)
	}
	if got, want := user.Claims(events), (user.ClaimChange{Release: "ada@example.com"}); got != want {
		t.Errorf("Claims after Deactivate = %+v, want %+v", got, want)
	}
}

func TestClaimStreamID(t *testing.T) {
	t.Parallel()
	a, b := user.ClaimStreamID("Ada@Example.COM"), user.ClaimStreamID("ada@example.com")
	if a != b {
		t.Errorf("ClaimStreamID differs by case: %q vs %q", a, b)
	}
	if !strings.HasPrefix(a, "emailclaim-") {
		t.Errorf("ClaimStreamID = %q, want prefix emailclaim-", a)
	}
	if strings.Contains(a, "ada") || strings.Contains(a, "@") {
		t.Errorf("ClaimStreamID = %q spells the address out", a)
	}
	if c := user.ClaimStreamID("bob@example.com"); c == a {
		t.Errorf("different addresses share claim stream %q", c)
	}
	if got := user.NormalizeEmail("Ada@Example.COM"); got != "ada@example.com" {
		t.Errorf("NormalizeEmail = %q, want ada@example.com", got)
	}
	if got := user.StreamID("u1"); got != "user-u1" {
		t.Errorf("StreamID(u1) = %q, want user-u1", got)
	}
}

func claimData(t *testing.T, userID string) []byte {
	t.Helper()
	data, err := json.Marshal(user.ClaimEvent{UserID: userID})
	if err != nil {
		t.Fatal(err)
	}
	return data
}

func TestApplyClaim(t *testing.T) {
	t.Parallel()
	type step struct {
		typ, userID string
	}
	for _, tc := range []struct {
		name  string
		steps []step
		want  user.ClaimState
	}{
		{"claimed", []step{{user.TypeEmailClaimed, "u1"}}, user.ClaimState{Holder: "u1", Version: 1}},
		{"claimed then released by the holder",
			[]step{{user.TypeEmailClaimed, "u1"}, {user.TypeEmailReleased, "u1"}},
			user.ClaimState{Holder: "", Version: 2}},
		{"released by a non-holder",
			[]step{{user.TypeEmailClaimed, "u1"}, {user.TypeEmailReleased, "u2"}},
			user.ClaimState{Holder: "u1", Version: 2}},
		{"released then claimed by another",
			[]step{{user.TypeEmailClaimed, "u1"}, {user.TypeEmailReleased, "u1"}, {user.TypeEmailClaimed, "u2"}},
			user.ClaimState{Holder: "u2", Version: 3}},
	} {
		var c user.ClaimState
		for _, st := range tc.steps {
			var err error
			c, err = c.ApplyClaim(st.typ, claimData(t, st.userID))
			if err != nil {
				t.Fatalf("%s: ApplyClaim(%s, %s): %v", tc.name, st.typ, st.userID, err)
			}
		}
		if c != tc.want {
			t.Errorf("%s: claim %+v, want %+v", tc.name, c, tc.want)
		}
	}

	held := user.ClaimState{Holder: "u1", Version: 1}
	got, err := held.ApplyClaim("EmailStolen", claimData(t, "u2"))
	if err == nil {
		t.Errorf("ApplyClaim of an unknown type: no error, state %+v", got)
	}
	if got != held {
		t.Errorf("ApplyClaim of an unknown type changed the claim to %+v", got)
	}
	got, err = held.ApplyClaim(user.TypeEmailClaimed, []byte(`{"userId":`))
	if err == nil {
		t.Errorf("ApplyClaim of malformed JSON: no error, state %+v", got)
	}
	if got != held {
		t.Errorf("ApplyClaim of malformed JSON changed the claim to %+v", got)
	}
}
