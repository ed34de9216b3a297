package eventstore

import (
	"bytes"
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/strata-es/strata/internal/store/pgsql"
)

// Crypto-shredding. A field marked personal (PersonalFields) is stored as an envelope,
//
//	{"$personal": "v1:<subject>:<base64 of nonce and AES-256-GCM ciphertext>"}
//
// sealed with its subject's key (table personal_keys), with the event id, the field's name and
// the subject as additional data: a ciphertext copied into another field or event does not open.
// Reads open envelopes before upcasting; once the subject is forgotten its key is gone and the
// field reads as Redacted. docs/design.md ("Personal data") has the reasoning.

// Redacted is what a personal field reads as once its subject has been forgotten.
const Redacted = "[redacted]"

const (
	envelopeKey     = "$personal"
	envelopeVersion = "v1"
	keyBytes        = 32 // AES-256
)

// ErrForgotten is returned when personal data would be sealed for a subject that has been
// forgotten: its key is gone for good and is never made again.
var ErrForgotten = errors.New("the subject's personal data has been forgotten")

// ErrTampered is the UpcastErr of an event whose envelope does not open with its subject's key:
// the ciphertext was altered, or moved from another field or event.
var ErrTampered = errors.New("personal data envelope does not open: altered or moved")

// PersonalFields marks personal fields of the events of one stream category. The subject of a
// personal field, whose key seals it, is the aggregate the stream belongs to: the part of the
// stream id after "<Category>-".
type PersonalFields struct {
	Category string
	// Types maps an event type to the names of its top-level fields that hold personal data.
	Types map[string][]string
}

// personalIndex finds the personal fields of an event.
type personalIndex map[string]map[string][]string // category → type → fields

func indexPersonal(pf []PersonalFields) personalIndex {
	if len(pf) == 0 {
		return nil
	}
	m := personalIndex{}
	for _, p := range pf {
		if m[p.Category] == nil {
			m[p.Category] = map[string][]string{}
		}
		for t, fields := range p.Types {
			m[p.Category][t] = append(m[p.Category][t], fields...)
		}
	}
	return m
}

// fields returns the personal fields of an event of typ in streamID and their subject.
func (m personalIndex) fields(streamID, typ string) (subject string, fields []string) {
	cat := Category(streamID)
	fields = m[cat][typ]
	if len(fields) == 0 {
		return "", nil
	}
	subject = strings.TrimPrefix(streamID, cat+"-")
	if subject == "" || subject == streamID {
		return "", nil
	}
	return subject, fields
}

// Seal encrypts the personal fields of events bound for streamID in place, with the key of
// the stream's subject, made on first use. Events without an id get one here, since the id is
// part of what a sealed value is bound to. Events of types with no personal fields are left as
// they are. It returns ErrForgotten when the subject has been forgotten.
func (s *Store) Seal(ctx context.Context, streamID string, events []EventData) error {
	var key []byte
	for i := range events {
		e := &events[i]
		subject, fields := s.personal.fields(streamID, e.Type)
		if len(fields) == 0 {
			continue
		}
		if key == nil {
			var err error
			if key, err = s.subjectKey(ctx, subject); err != nil {
				return err
			}
		}
		if e.ID == uuid.Nil {
			id, err := uuid.NewV7()
			if err != nil {
				return fmt.Errorf("make event id: %w", err)
			}
			e.ID = id
		}
		var obj map[string]json.RawMessage
		if err := json.Unmarshal(e.Data, &obj); err != nil {
			return atEvent(i, &ValidationError{Field: "data", Reason: "not a JSON object: " + err.Error()})
		}
		for _, f := range fields {
			v, ok := obj[f]
			if !ok || isEnvelope(v) {
				continue
			}
			sealed, err := sealValue(key, e.ID, f, subject, v)
			if err != nil {
				return err
			}
			obj[f] = sealed
		}
		data, err := json.Marshal(obj)
		if err != nil {
			return fmt.Errorf("encode %s: %w", e.Type, err)
		}
		e.Data = data
	}
	return nil
}

// subjectKey returns the subject's key, making it on first use. Two writers that make the
// first key of one subject at once get the same one: the insert that loses the race on the
// primary key takes the winner's row (ON CONFLICT DO UPDATE returns the newest row version,
// even one committed after the statement's snapshot).
func (s *Store) subjectKey(ctx context.Context, subject string) ([]byte, error) {
	var (
		key     []byte
		wrapped bool
	)
	err := s.pool.QueryRow(ctx, pgsql.EventstoreSubjectKey, subject).Scan(&key, &wrapped)
	if errors.Is(err, pgx.ErrNoRows) {
		fresh := make([]byte, keyBytes)
		if _, err := rand.Read(fresh); err != nil {
			return nil, fmt.Errorf("make key: %w", err)
		}
		stored, wrap := fresh, s.opts.MasterKey != nil
		if wrap {
			if stored, err = wrapKey(s.opts.MasterKey, subject, fresh); err != nil {
				return nil, err
			}
		}
		err = s.pool.QueryRow(ctx, pgsql.EventstoreMakeSubjectKey, subject, stored, wrap).Scan(&key, &wrapped)
	}
	if err != nil {
		return nil, fmt.Errorf("key of %s: %w", subject, err)
	}
	if key == nil {
		return nil, fmt.Errorf("seal for %s: %w", subject, ErrForgotten)
	}
	return s.unwrapKey(subject, key, wrapped)
}

// ErrMasterKey is returned when a subject's key was wrapped with a master key and the store has
// none, or another one.
var ErrMasterKey = errors.New("the subject's key does not open with this server's master key (--personal-data-key-file)")

// wrapKey seals a subject's key with the master key, bound to the subject.
func wrapKey(master []byte, subject string, key []byte) ([]byte, error) {
	gcm, err := newGCM(master)
	if err != nil {
		return nil, fmt.Errorf("master key: %w", err)
	}
	nonce := make([]byte, gcm.NonceSize(), gcm.NonceSize()+len(key)+gcm.Overhead())
	if _, err := rand.Read(nonce); err != nil {
		return nil, fmt.Errorf("wrap key: %w", err)
	}
	return gcm.Seal(nonce, nonce, key, keyAD(subject)), nil
}

// keyAD binds a wrapped key to its subject: a wrapped key copied to another row does not open.
func keyAD(subject string) []byte { return []byte("strata subject key v1\x00" + subject) }

// unwrapKey returns a subject's key as stored, opened with the master key when wrapped.
func (s *Store) unwrapKey(subject string, stored []byte, wrapped bool) ([]byte, error) {
	if !wrapped {
		return stored, nil
	}
	if s.opts.MasterKey == nil {
		return nil, fmt.Errorf("key of %s: %w: the server has none", subject, ErrMasterKey)
	}
	gcm, err := newGCM(s.opts.MasterKey)
	if err != nil {
		return nil, fmt.Errorf("master key: %w", err)
	}
	if len(stored) < gcm.NonceSize() {
		return nil, fmt.Errorf("key of %s: %w", subject, ErrMasterKey)
	}
	key, err := gcm.Open(nil, stored[:gcm.NonceSize()], stored[gcm.NonceSize():], keyAD(subject))
	if err != nil {
		return nil, fmt.Errorf("key of %s: %w", subject, ErrMasterKey)
	}
	return key, nil
}

// Forget deletes the subject's key for good, leaving a tombstone so that none is made again,
// and deletes the snapshots of streams (which hold state in the clear), in one transaction.
// From its commit on, every read shows the subject's personal fields as Redacted. Forgetting
// a subject twice, or one that never had a key, is not an error.
func (s *Store) Forget(ctx context.Context, subject string, streams ...string) error {
	if err := validateName("subject", subject, MaxStreamIDLen); err != nil {
		return err
	}
	if err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error { return forgetInTx(ctx, tx, subject, streams) }); err != nil {
		return fmt.Errorf("forget %s: %w", subject, err)
	}
	return nil
}

// ForgetAndAppend is Forget and AppendMulti(parts) in one transaction (never a group commit):
// the events that record the forgetting become visible exactly when the key is gone, so no
// reader sees them with the subject's data in the clear, and a crash leaves both or neither.
func (s *Store) ForgetAndAppend(ctx context.Context, subject string, streams []string, parts []StreamAppend) (results []AppendResult, err error) {
	if err := validateName("subject", subject, MaxStreamIDLen); err != nil {
		return nil, err
	}
	ctx, span := s.startAppend(ctx, parts)
	defer func() { endAppend(span, results, err) }()
	start := time.Now()
	inputs, err := s.prepareMulti(parts)
	if err == nil {
		results, err = s.appendMultiTx(ctx, parts, inputs, func(tx pgx.Tx) error {
			if err := forgetInTx(ctx, tx, subject, streams); err != nil {
				return fmt.Errorf("forget %s: %w", subject, err)
			}
			return nil
		})
	}
	if s.opts.Observer != nil {
		s.opts.Observer.Appended(writtenAll(results), time.Since(start), err)
	}
	return results, err
}

// forgetInTx takes the subject's lock (exclusive with snapshot savers), leaves the tombstone
// and deletes the snapshots.
func forgetInTx(ctx context.Context, tx pgx.Tx, subject string, streams []string) error {
	if _, err := tx.Exec(ctx, pgsql.EventstoreLockSubjectExclusive, subject); err != nil {
		return err
	}
	if _, err := tx.Exec(ctx, pgsql.EventstoreForgetSubject, subject); err != nil {
		return err
	}
	_, err := tx.Exec(ctx, pgsql.EventstoreDeleteSnapshots, streams)
	return err
}

// Forgotten reports whether the subject has been forgotten.
func (s *Store) Forgotten(ctx context.Context, subject string) (bool, error) {
	var forgotten bool
	err := s.pool.QueryRow(ctx, pgsql.EventstoreForgotten, subject).Scan(&forgotten)
	if err != nil {
		return false, fmt.Errorf("is %s forgotten: %w", subject, err)
	}
	return forgotten, nil
}

// subjectKeys is what one read knows of the subjects of its events: the key, or nil for a
// subject that was forgotten (or whose key is missing).
type subjectKeys struct {
	keys      map[string][]byte
	forgotten map[string]bool // tombstones only
}

// unseal opens the personal fields of a page of events in place, with one query for the keys
// of every subject in the page, and redacts those of forgotten subjects: sealed ones because
// their key is gone, and ones stored in the clear (written before sealing, or by a store without
// the registry) because the tombstone says so. It runs before upcasting, on fields as stored.
func (s *Store) unseal(ctx context.Context, q RowsQuerier, events []RecordedEvent) error {
	var subjects []string
	seen := map[string]bool{}
	add := func(subject string) {
		if !seen[subject] {
			seen[subject] = true
			subjects = append(subjects, subject)
		}
	}
	need := make([]bool, len(events))
	for i := range events {
		e := &events[i]
		if subject, fields := s.personal.fields(e.StreamID, e.Type); len(fields) > 0 {
			add(subject)
			need[i] = true
		}
		if bytes.Contains(e.Data, []byte(`"`+envelopeKey+`"`)) {
			for _, subject := range envelopeSubjects(e.Data) {
				add(subject)
			}
			need[i] = true
		}
	}
	if len(subjects) == 0 {
		return nil
	}
	keys := subjectKeys{keys: map[string][]byte{}, forgotten: map[string]bool{}}
	rows, err := q.Query(ctx, pgsql.EventstoreSubjectKeys, subjects)
	if err != nil {
		return fmt.Errorf("read keys: %w", err)
	}
	type row struct {
		subject string
		key     []byte
		wrapped bool
	}
	found, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (row, error) {
		var k row
		err := r.Scan(&k.subject, &k.key, &k.wrapped)
		return k, err
	})
	if err != nil {
		return fmt.Errorf("read keys: %w", err)
	}
	for _, k := range found {
		if k.key == nil {
			keys.forgotten[k.subject] = true
			continue
		}
		// A key that does not open fails the read: redacting would pass a misconfigured server
		// off as a forgotten subject.
		if keys.keys[k.subject], err = s.unwrapKey(k.subject, k.key, k.wrapped); err != nil {
			return err
		}
	}
	for i := range events {
		if need[i] {
			s.unsealEvent(&events[i], keys)
		}
	}
	return nil
}

func (s *Store) unsealEvent(e *RecordedEvent, keys subjectKeys) {
	var obj map[string]json.RawMessage
	if json.Unmarshal(e.Data, &obj) != nil {
		return
	}
	changed := false
	for name, v := range obj {
		if !isEnvelope(v) {
			continue
		}
		subject, _, ok := parseEnvelope(v)
		if !ok {
			e.UpcastErr = fmt.Errorf("field %s: %w", name, ErrTampered)
			return
		}
		key := keys.keys[subject]
		if key == nil {
			obj[name] = redactedJSON
			e.Redacted = append(e.Redacted, name)
			changed = true
			continue
		}
		plain, err := openValue(key, e.ID, name, v)
		if err != nil {
			e.UpcastErr = fmt.Errorf("field %s: %w", name, err)
			return
		}
		obj[name] = plain
		changed = true
	}
	if subject, fields := s.personal.fields(e.StreamID, e.Type); keys.forgotten[subject] {
		for _, name := range fields {
			if v, ok := obj[name]; ok && !bytes.Equal(v, redactedJSON) && !bytes.Equal(v, []byte("null")) {
				obj[name] = redactedJSON
				e.Redacted = append(e.Redacted, name)
				changed = true
			}
		}
	}
	if !changed {
		return
	}
	slices.Sort(e.Redacted)
	if data, err := json.Marshal(obj); err == nil {
		e.Data = data
	}
}

var redactedJSON = json.RawMessage(`"` + Redacted + `"`) //nolint:gochecknoglobals // a constant

// envelope is a sealed value as stored.
type envelope struct {
	Sealed string `json:"$personal"`
}

// isEnvelope reports whether v looks like a sealed value: an object whose only member is
// "$personal".
func isEnvelope(v json.RawMessage) bool {
	v = bytes.TrimSpace(v)
	if len(v) == 0 || v[0] != '{' || !bytes.Contains(v, []byte(envelopeKey)) {
		return false
	}
	var m map[string]json.RawMessage
	if json.Unmarshal(v, &m) != nil || len(m) != 1 {
		return false
	}
	_, ok := m[envelopeKey]
	return ok
}

// envelopeSubjects lists the subjects of the envelopes among data's top-level fields.
func envelopeSubjects(data json.RawMessage) []string {
	var obj map[string]json.RawMessage
	if json.Unmarshal(data, &obj) != nil {
		return nil
	}
	var out []string
	for _, v := range obj {
		if !isEnvelope(v) {
			continue
		}
		if subject, _, ok := parseEnvelope(v); ok {
			out = append(out, subject)
		}
	}
	return out
}

// parseEnvelope splits a sealed value into its subject and nonce+ciphertext.
func parseEnvelope(v json.RawMessage) (subject string, sealed []byte, ok bool) {
	var env envelope
	if json.Unmarshal(v, &env) != nil {
		return "", nil, false
	}
	rest, ok := strings.CutPrefix(env.Sealed, envelopeVersion+":")
	if !ok {
		return "", nil, false
	}
	i := strings.LastIndexByte(rest, ':')
	if i <= 0 {
		return "", nil, false
	}
	sealed, err := base64.RawStdEncoding.DecodeString(rest[i+1:])
	if err != nil {
		return "", nil, false
	}
	return rest[:i], sealed, true
}

// additionalData binds a sealed value to its place: the event, the field and the subject.
func additionalData(eventID uuid.UUID, field, subject string) []byte {
	ad := make([]byte, 0, 64+len(field)+len(subject))
	ad = append(ad, "strata personal v1\x00"...)
	ad = append(ad, eventID[:]...)
	ad = append(ad, field...)
	ad = append(ad, 0)
	return append(ad, subject...)
}

func newGCM(key []byte) (cipher.AEAD, error) {
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, err
	}
	return cipher.NewGCM(block)
}

// sealValue encrypts the JSON value v of field into an envelope.
func sealValue(key []byte, eventID uuid.UUID, field, subject string, v json.RawMessage) (json.RawMessage, error) {
	if strings.ContainsRune(subject, 0) {
		return nil, &ValidationError{Field: "subject", Reason: "contains a NUL byte"}
	}
	gcm, err := newGCM(key)
	if err != nil {
		return nil, fmt.Errorf("seal %s: %w", field, err)
	}
	nonce := make([]byte, gcm.NonceSize(), gcm.NonceSize()+len(v)+gcm.Overhead())
	if _, err := rand.Read(nonce); err != nil {
		return nil, fmt.Errorf("seal %s: %w", field, err)
	}
	sealed := gcm.Seal(nonce, nonce, v, additionalData(eventID, field, subject))
	return json.Marshal(envelope{Sealed: envelopeVersion + ":" + subject + ":" + base64.RawStdEncoding.EncodeToString(sealed)})
}

// openValue decrypts the envelope v of field with key; ErrTampered when it does not open.
func openValue(key []byte, eventID uuid.UUID, field string, v json.RawMessage) (json.RawMessage, error) {
	subject, sealed, ok := parseEnvelope(v)
	if !ok {
		return nil, ErrTampered
	}
	gcm, err := newGCM(key)
	if err != nil {
		return nil, err
	}
	if len(sealed) < gcm.NonceSize() {
		return nil, ErrTampered
	}
	plain, err := gcm.Open(nil, sealed[:gcm.NonceSize()], sealed[gcm.NonceSize():], additionalData(eventID, field, subject))
	if err != nil || !json.Valid(plain) {
		return nil, ErrTampered
	}
	return plain, nil
}
