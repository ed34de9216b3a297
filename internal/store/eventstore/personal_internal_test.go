package eventstore

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/google/uuid"
)

func TestEnvelopeRoundTripsAnyJSONValue(t *testing.T) {
	key := bytes.Repeat([]byte{7}, keyBytes)
	id := uuid.New()
	for _, v := range []string{`"ada@example.com"`, `42`, `{"street":"1 Main St"}`, `null`, `"ünïcødé \u0000"`} {
		sealed, err := sealValue(key, id, "email", "subject-1", json.RawMessage(v))
		if err != nil {
			t.Fatal(err)
		}
		if !isEnvelope(sealed) || !strings.HasPrefix(string(sealed), `{"$personal":"v1:subject-1:`) {
			t.Errorf("sealed %s is not an envelope", sealed)
		}
		if strings.Contains(string(sealed), strings.Trim(v, `"`)) && len(v) > 4 {
			t.Errorf("sealed %s shows its plaintext %s", sealed, v)
		}
		plain, err := openValue(key, id, "email", sealed)
		if err != nil || string(plain) != v {
			t.Errorf("open(seal(%s)) = %s, %v", v, plain, err)
		}
	}
}

func TestEnvelopeRefusesTamperingAndMoves(t *testing.T) {
	key := bytes.Repeat([]byte{7}, keyBytes)
	id := uuid.New()
	sealed, err := sealValue(key, id, "email", "subject-1", json.RawMessage(`"ada@example.com"`))
	if err != nil {
		t.Fatal(err)
	}
	subject, ct, ok := parseEnvelope(sealed)
	if !ok || subject != "subject-1" {
		t.Fatalf("parse %s: %q %v", sealed, subject, ok)
	}
	flipped := bytes.Clone(ct)
	flipped[len(flipped)-1] ^= 1
	altered, _ := json.Marshal(envelope{Sealed: "v1:subject-1:" + base64.RawStdEncoding.EncodeToString(flipped)})
	otherSubject, _ := json.Marshal(envelope{Sealed: "v1:subject-2:" + base64.RawStdEncoding.EncodeToString(ct)})
	cases := []struct {
		name  string
		key   []byte
		id    uuid.UUID
		field string
		v     json.RawMessage
	}{
		{"an altered ciphertext", key, id, "email", altered},
		{"moved to another field", key, id, "name", sealed},
		{"moved to another event", key, uuid.New(), "email", sealed},
		{"moved to another subject", key, id, "email", otherSubject},
		{"another key", bytes.Repeat([]byte{8}, keyBytes), id, "email", sealed},
		{"truncated", key, id, "email", json.RawMessage(`{"$personal":"v1:subject-1:AAAA"}`)},
		{"not base64", key, id, "email", json.RawMessage(`{"$personal":"v1:subject-1:%%%"}`)},
		{"an unknown version", key, id, "email", json.RawMessage(strings.Replace(string(sealed), `"v1:`, `"v9:`, 1))},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if plain, err := openValue(c.key, c.id, c.field, c.v); !errors.Is(err, ErrTampered) {
				t.Errorf("open = %s, %v; want ErrTampered", plain, err)
			}
		})
	}
}

func TestIsEnvelope(t *testing.T) {
	for v, want := range map[string]bool{
		`{"$personal":"v1:s:AAAA"}`:          true,
		` {"$personal": "x"} `:               true,
		`{"$personal":"v1:s:AAAA","more":1}`: false,
		`"$personal"`:                        false,
		`{"name":"$personal"}`:               false,
		`[{"$personal":"x"}]`:                false,
		`{`:                                  false,
	} {
		if got := isEnvelope(json.RawMessage(v)); got != want {
			t.Errorf("isEnvelope(%s) = %v, want %v", v, got, want)
		}
	}
}
