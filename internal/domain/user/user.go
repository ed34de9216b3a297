// Package user is the User aggregate: people who register, change their email and name, and
// may be deactivated. A user's events live in stream user-<id>.
//
// An email address belongs to at most one active user. Each address has a claim stream
// (ClaimStreamID); the command layer writes a user's events and the claim changes they imply
// (Claims) in one multi-stream append, with the claim stream's version checked, so that two
// concurrent registrations of one address cannot both succeed.
package user

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/mail"
	"strings"
	"unicode/utf8"

	"github.com/strata-es/strata/internal/domain"
)

// Category is the stream category of users: a user's stream is "user-<id>".
const Category = "user"

// StreamID returns the stream of the user with this id.
func StreamID(id string) string { return Category + "-" + id }

// Status is a user's lifecycle state.
type Status string

// Statuses.
const (
	Active      Status = "ACTIVE"
	Deactivated Status = "DEACTIVATED"
	// Forgotten: the user's personal data was shredded (Forget); their name and email read as
	// domain.Redacted everywhere, and no command but Forget applies to them any more.
	Forgotten Status = "FORGOTTEN"
)

// Limits on input.
const (
	MaxNameLen  = 200 // characters
	MaxEmailLen = 254 // bytes, as RFC 5321 allows
)

// StateShape is the version of State's shape in snapshots: change it when State's fields change,
// and snapshots of the old shape are ignored.
const StateShape = 1

// State is a user as its events leave it. The zero State is a user that does not exist.
type State struct {
	ID      string
	Name    string
	Email   string
	Status  Status
	Version int64 // the version of the last event applied
}

// Exists reports whether the user has been registered.
func (s State) Exists() bool { return s.Version > 0 }

// Events. Type names are stored with every event and must never change.
const (
	TypeRegistered   = "UserRegistered"
	TypeEmailChanged = "EmailChanged"
	TypeRenamed      = "UserRenamed"
	TypeDeactivated  = "UserDeactivated"
	TypeForgotten    = "UserForgotten"
)

// Personal marks the personal fields of the user's events; their subject is the user.
func Personal() domain.PersonalFields {
	return domain.PersonalFields{Category: Category, Types: map[string][]string{
		TypeRegistered:   {"name", "email"},
		TypeEmailChanged: {"oldEmail", "newEmail"},
		TypeRenamed:      {"oldName", "newName"},
		TypeDeactivated:  {"email"},
		TypeForgotten:    {"email"},
	}}
}

// Event is one of the user's events.
type Event interface{ EventType() string }

// Registered is a user's first event (the seed's UserCreated).
type Registered struct {
	UserID string `json:"userId"`
	Name   string `json:"name"`
	Email  string `json:"email"`
}

// EmailChanged records a new email address.
type EmailChanged struct {
	OldEmail string `json:"oldEmail"`
	NewEmail string `json:"newEmail"`
}

// Renamed records a new name.
type Renamed struct {
	OldName string `json:"oldName"`
	NewName string `json:"newName"`
}

// DeactivatedEvent records that the user was deactivated; their email is free again.
type DeactivatedEvent struct {
	Email string `json:"email"`
}

// ForgottenEvent records that the user's personal data was shredded. Email is the address whose
// claim it releases (empty when the user held none, being deactivated).
type ForgottenEvent struct {
	Email string `json:"email,omitempty"`
}

// EventType implements Event.
func (ForgottenEvent) EventType() string { return TypeForgotten }

// EventType implements Event.
func (Registered) EventType() string { return TypeRegistered }

// EventType implements Event.
func (EmailChanged) EventType() string { return TypeEmailChanged }

// SchemaVersion is the version of EmailChanged's shape: 2 since the seed's {old_email,
// new_email} became {oldEmail, newEmail} (Upcasters).
func (EmailChanged) SchemaVersion() int { return 2 }

// Upcasters bring the user's old payloads to current shapes.
func Upcasters() []domain.Upcaster {
	return []domain.Upcaster{{Type: TypeEmailChanged, From: 1, Up: emailChangedV1}}
}

// emailChangedV1 renames the seed's snake_case fields. A payload already in the new shape
// (written as version 1 before versions were tracked) passes unchanged.
func emailChangedV1(data []byte) ([]byte, error) {
	var v map[string]json.RawMessage
	if err := json.Unmarshal(data, &v); err != nil {
		return nil, err
	}
	for old, current := range map[string]string{"old_email": "oldEmail", "new_email": "newEmail"} {
		if x, ok := v[old]; ok {
			v[current] = x
			delete(v, old)
		}
	}
	return json.Marshal(v)
}

// EventType implements Event.
func (Renamed) EventType() string { return TypeRenamed }

// EventType implements Event.
func (DeactivatedEvent) EventType() string { return TypeDeactivated }

// Decode turns a stored event back into an Event.
func Decode(typ string, data []byte) (Event, error) {
	var e Event
	var err error
	switch typ {
	case TypeRegistered:
		var v Registered
		err, e = json.Unmarshal(data, &v), v
	case TypeEmailChanged:
		var v EmailChanged
		err, e = json.Unmarshal(data, &v), v
	case TypeRenamed:
		var v Renamed
		err, e = json.Unmarshal(data, &v), v
	case TypeDeactivated:
		var v DeactivatedEvent
		err, e = json.Unmarshal(data, &v), v
	case TypeForgotten:
		var v ForgottenEvent
		err, e = json.Unmarshal(data, &v), v
	default:
		return nil, fmt.Errorf("user: %w %q", domain.ErrUnknownEvent, typ)
	}
	if err != nil {
		return nil, fmt.Errorf("user: decode %s: %w", typ, err)
	}
	return e, nil
}

// Apply returns the state after e. Apply never fails: events are facts.
func (s State) Apply(e Event) State {
	switch e := e.(type) {
	case Registered:
		s.ID, s.Name, s.Email, s.Status = e.UserID, e.Name, e.Email, Active
	case EmailChanged:
		s.Email = e.NewEmail
	case Renamed:
		s.Name = e.NewName
	case DeactivatedEvent:
		s.Status = Deactivated
	case ForgottenEvent:
		s.Name, s.Email, s.Status = domain.Redacted, domain.Redacted, Forgotten
	}
	s.Version++
	return s
}

// Commands.
type (
	// Command is one of the commands below.
	Command interface{ isCommand() }
	// Register registers a new user. EmailHolder is the id of the user who holds the address's
	// claim now ("" when nobody does); the command layer reads it from the claim stream.
	Register struct {
		ID, Name, Email string
		EmailHolder     string
	}
	// ChangeEmail gives the user a new address; EmailHolder as for Register.
	ChangeEmail struct {
		Email       string
		EmailHolder string
	}
	// Rename gives the user a new name.
	Rename struct{ Name string }
	// Deactivate deactivates the user and frees their address.
	Deactivate struct{}
	// Forget shreds the user's personal data and frees their address.
	Forget struct{}
)

func (Register) isCommand()    {}
func (ChangeEmail) isCommand() {}
func (Rename) isCommand()      {}
func (Deactivate) isCommand()  {}
func (Forget) isCommand()      {}

// Decide returns the events that command c produces on state s, or the rule it would break.
func Decide(s State, c Command) ([]Event, error) {
	if _, ok := c.(Register); !ok {
		if !s.Exists() {
			return nil, fmt.Errorf("user: %w", domain.ErrNotFound)
		}
		if s.Status == Forgotten {
			return nil, domain.Broken("user-forgotten", "user %s has been forgotten", s.ID)
		}
		if _, ok := c.(Forget); ok {
			email := ""
			if s.Status == Active {
				email = s.Email
			}
			return []Event{ForgottenEvent{Email: email}}, nil
		}
		if s.Status != Active {
			return nil, domain.Broken("user-active", "user %s is deactivated", s.ID)
		}
	}
	switch c := c.(type) {
	case Register:
		if s.Exists() {
			return nil, domain.Broken("user-new", "user %s is already registered", s.ID)
		}
		name, err := validName(c.Name)
		if err != nil {
			return nil, err
		}
		if err := validEmail(c.Email); err != nil {
			return nil, err
		}
		if c.EmailHolder != "" && c.EmailHolder != c.ID {
			return nil, emailTaken(c.Email)
		}
		return []Event{Registered{UserID: c.ID, Name: name, Email: c.Email}}, nil
	case ChangeEmail:
		if err := validEmail(c.Email); err != nil {
			return nil, err
		}
		if c.EmailHolder != "" && c.EmailHolder != s.ID {
			return nil, emailTaken(c.Email)
		}
		return []Event{EmailChanged{OldEmail: s.Email, NewEmail: c.Email}}, nil
	case Rename:
		name, err := validName(c.Name)
		if err != nil {
			return nil, err
		}
		return []Event{Renamed{OldName: s.Name, NewName: name}}, nil
	case Deactivate:
		return []Event{DeactivatedEvent{Email: s.Email}}, nil
	}
	return nil, fmt.Errorf("user: unknown command %T", c)
}

func emailTaken(email string) error {
	return domain.Broken("email-unique", "the email address %s belongs to another active user", email)
}

func validName(name string) (string, error) {
	name = strings.TrimSpace(name)
	switch {
	case name == "":
		return "", domain.Broken("name-valid", "a name must not be empty")
	case !utf8.ValidString(name) || utf8.RuneCountInString(name) > MaxNameLen:
		return "", domain.Broken("name-valid", "a name is at most %d characters of UTF-8", MaxNameLen)
	case strings.ContainsFunc(name, func(r rune) bool { return r < ' ' || r == 0x7f }):
		return "", domain.Broken("name-valid", "a name must not contain control characters")
	}
	return name, nil
}

// validEmail accepts a bare address (no display name, no angle brackets) with a domain part.
func validEmail(email string) error {
	bad := func() error {
		return domain.Broken("email-valid", "%q is not a valid email address (like ada@example.com)", email)
	}
	if len(email) > MaxEmailLen {
		return domain.Broken("email-valid", "an email address is at most %d bytes", MaxEmailLen)
	}
	addr, err := mail.ParseAddress(email)
	if err != nil || addr.Name != "" || addr.Address != email {
		return bad()
	}
	at := strings.LastIndexByte(email, '@')
	if at < 1 || !strings.Contains(email[at+1:], ".") || strings.HasSuffix(email, ".") {
		return bad()
	}
	return nil
}

// NormalizeEmail is the form in which addresses are compared for uniqueness: lower case.
func NormalizeEmail(email string) string { return strings.ToLower(email) }

// EmailTagCategory names the tags that hold addresses (internal/runtime/command): an event
// that gives a user an address carries "email:<sha-256 of the normalised address>".
const EmailTagCategory = "email"

// ClaimCategory is the stream category of email claims, how addresses were held before tags
// (still read).
const ClaimCategory = "emailclaim"

// ClaimStreamID returns the claim stream of an address: a hash of its normalised form, so that
// stream ids stay short and do not spell addresses out.
func ClaimStreamID(email string) string {
	sum := sha256.Sum256([]byte(NormalizeEmail(email)))
	return ClaimCategory + "-" + hex.EncodeToString(sum[:])
}

// Claim events.
const (
	TypeEmailClaimed  = "EmailClaimed"
	TypeEmailReleased = "EmailReleased"
)

// ClaimEvent is an event of a claim stream: UserID took or gave up the address.
type ClaimEvent struct {
	Type   string `json:"-"`
	UserID string `json:"userId"`
}

// EventType implements the command layer's event interface.
func (e ClaimEvent) EventType() string { return e.Type }

// ClaimState is who holds an address: Holder is "" when nobody does.
type ClaimState struct {
	Holder  string
	Version int64
}

// ApplyClaim returns the claim after an event of its stream.
func (c ClaimState) ApplyClaim(typ string, data []byte) (ClaimState, error) {
	var e ClaimEvent
	if err := json.Unmarshal(data, &e); err != nil {
		return c, fmt.Errorf("user: decode %s: %w", typ, err)
	}
	switch typ {
	case TypeEmailClaimed:
		c.Holder = e.UserID
	case TypeEmailReleased:
		if c.Holder == e.UserID {
			c.Holder = ""
		}
	default:
		return c, fmt.Errorf("user: unknown claim event type %q", typ)
	}
	c.Version++
	return c, nil
}

// ClaimChange is what a user's new events do to address claims: release Release (if not
// empty) and claim Claim (if not empty).
type ClaimChange struct {
	Release, Claim string
}

// Claims returns the claim changes that a command's events imply. Changing an address to
// another spelling of the same normalised address changes no claim.
func Claims(events []Event) ClaimChange {
	var ch ClaimChange
	for _, e := range events {
		switch e := e.(type) {
		case Registered:
			ch.Claim = e.Email
		case EmailChanged:
			if NormalizeEmail(e.OldEmail) != NormalizeEmail(e.NewEmail) {
				ch.Release, ch.Claim = e.OldEmail, e.NewEmail
			}
		case DeactivatedEvent:
			ch.Release = e.Email
		case ForgottenEvent:
			ch.Release = e.Email
		}
	}
	return ch
}

// WithVersion implements domain.Versioned.
func (s State) WithVersion(v int64) State {
	s.Version = v
	return s
}

// Definition declares the User aggregate to the runtime.
func Definition() domain.Aggregate[State, Event, Command] {
	return domain.Aggregate[State, Event, Command]{
		Name: "User", Category: Category, Shape: StateShape,
		Decode: Decode, Evolve: State.Apply, Decide: Decide, Fields: Fields, Upcasters: Upcasters(),
		Personal: Personal().Types, Also: []string{ClaimCategory},
		Events: []Event{Registered{}, EmailChanged{}, Renamed{}, DeactivatedEvent{}, ForgottenEvent{}},
		Tags:   []string{EmailTagCategory},
		ReadModel: &domain.ReadModel{
			Table: "users",
			Columns: []domain.Column{
				{Name: "id", Field: "ID"}, {Name: "name", Field: "Name"}, {Name: "email", Field: "Email"},
				{Name: "status", Field: "Status"}, {Name: "version", Field: "Version"},
			},
			Filters: []domain.Filter{{Name: "status", Column: "status"}, {Name: "emailContains", Column: "email", Match: domain.Contains}},
		},
	}
}

// Fields are a user's fields as clients see them.
func Fields(s State) []domain.Field {
	return []domain.Field{{Name: "name", Value: s.Name}, {Name: "email", Value: s.Email}, {Name: "status", Value: string(s.Status)}}
}
