package auth

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

var secret = []byte("0123456789abcdef0123456789abcdef") //nolint:gochecknoglobals // test fixture

func sign(t *testing.T, method jwt.SigningMethod, key any, c jwt.MapClaims) string {
	t.Helper()
	s, err := jwt.NewWithClaims(method, c).SignedString(key)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func writePEM(t *testing.T, pub any) string {
	t.Helper()
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "key.pem")
	if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestAuthenticate(t *testing.T) {
	rsaKey, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	ecKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	otherEC, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	rsaPub, err := LoadPublicKey(writePEM(t, &rsaKey.PublicKey))
	if err != nil {
		t.Fatal(err)
	}
	ecPub, err := LoadPublicKey(writePEM(t, &ecKey.PublicKey))
	if err != nil {
		t.Fatal(err)
	}
	key, err := ParseAPIKey("ci:writer:" + HashAPIKey("s3cret-api-key"))
	if err != nil {
		t.Fatal(err)
	}
	now := time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC)
	a := New(Options{HS256Secret: secret, PublicKeys: []any{rsaPub, ecPub}, APIKeys: []APIKey{key}, Issuer: "idp", Now: func() time.Time { return now }})
	claims := func(role string, exp time.Time) jwt.MapClaims {
		return jwt.MapClaims{"sub": "alice", "role": role, "iss": "idp", "exp": exp.Unix()}
	}
	later := now.Add(time.Hour)

	for _, tc := range []struct {
		name    string
		token   string
		want    Principal
		wantErr error
		reason  string
	}{
		{"HS256", sign(t, jwt.SigningMethodHS256, secret, claims("reader", later)), Principal{Subject: "alice", Role: RoleReader, Expires: later}, nil, ""},
		{"RS256", sign(t, jwt.SigningMethodRS256, rsaKey, claims("writer", later)), Principal{Subject: "alice", Role: RoleWriter, Expires: later}, nil, ""},
		{"ES256", sign(t, jwt.SigningMethodES256, ecKey, claims("admin", later)), Principal{Subject: "alice", Role: RoleAdmin, Expires: later}, nil, ""},
		{"API key", "s3cret-api-key", Principal{Subject: "apikey:ci", Role: RoleWriter}, nil, ""},
		{"no token", "", Principal{}, ErrNoToken, ""},
		{"expired", sign(t, jwt.SigningMethodHS256, secret, claims("reader", now.Add(-time.Second))), Principal{}, ErrTokenExpired, ""},
		{"no exp", sign(t, jwt.SigningMethodHS256, secret, jwt.MapClaims{"sub": "alice", "role": "reader", "iss": "idp"}), Principal{}, ErrTokenInvalid, "exp claim is missing"},
		{"wrong secret", sign(t, jwt.SigningMethodHS256, []byte("another-secret-another-secret-xx"), claims("admin", later)), Principal{}, ErrTokenInvalid, "signature"},
		{"unknown EC key", sign(t, jwt.SigningMethodES256, otherEC, claims("admin", later)), Principal{}, ErrTokenInvalid, "signature"},
		{"alg none", sign(t, jwt.SigningMethodNone, jwt.UnsafeAllowNoneSignatureType, claims("admin", later)), Principal{}, ErrTokenInvalid, ""},
		{"HS384 not configured", sign(t, jwt.SigningMethodHS384, secret, claims("admin", later)), Principal{}, ErrTokenInvalid, ""},
		{"wrong issuer", sign(t, jwt.SigningMethodHS256, secret, jwt.MapClaims{"sub": "a", "role": "reader", "iss": "evil", "exp": later.Unix()}), Principal{}, ErrTokenInvalid, "wrong issuer"},
		{"no role", sign(t, jwt.SigningMethodHS256, secret, jwt.MapClaims{"sub": "a", "iss": "idp", "exp": later.Unix()}), Principal{}, ErrTokenInvalid, "role claim"},
		{"unknown role", sign(t, jwt.SigningMethodHS256, secret, claims("root", later)), Principal{}, ErrTokenInvalid, "role claim"},
		{"no sub", sign(t, jwt.SigningMethodHS256, secret, jwt.MapClaims{"role": "reader", "iss": "idp", "exp": later.Unix()}), Principal{}, ErrTokenInvalid, "sub claim"},
		{"not yet valid", sign(t, jwt.SigningMethodHS256, secret, jwt.MapClaims{"sub": "a", "role": "reader", "iss": "idp", "exp": later.Unix(), "nbf": later.Add(-time.Minute).Unix()}), Principal{}, ErrTokenInvalid, "not valid yet"},
		{"garbage with dots", "a.b.c", Principal{}, ErrTokenInvalid, "malformed"},
		{"wrong API key", "s3cret-api-kez", Principal{}, ErrTokenInvalid, ""},
	} {
		got, err := a.Authenticate(tc.token)
		if !errors.Is(err, tc.wantErr) || (tc.wantErr == nil && err != nil) {
			t.Errorf("%s: error %v, want %v", tc.name, err, tc.wantErr)
			continue
		}
		if tc.reason != "" && !strings.Contains(err.Error(), tc.reason) {
			t.Errorf("%s: error %q does not say %q", tc.name, err, tc.reason)
		}
		if err == nil && (got.Subject != tc.want.Subject || got.Role != tc.want.Role || !got.Expires.Equal(tc.want.Expires)) {
			t.Errorf("%s: %+v, want %+v", tc.name, got, tc.want)
		}
		if err != nil && strings.Contains(err.Error(), tc.token) && tc.token != "" {
			t.Errorf("%s: the error repeats the token", tc.name)
		}
	}
}

func TestNothingConfiguredIsDisabled(t *testing.T) {
	if New(Options{}).Enabled() || (*Authenticator)(nil).Enabled() {
		t.Error("an authenticator with no credentials reports itself enabled")
	}
	if !New(Options{APIKeys: []APIKey{{Name: "k", Role: RoleReader}}}).Enabled() {
		t.Error("an authenticator with an API key reports itself disabled")
	}
	// Without HS256 configured, a token signed with an empty secret must not pass.
	a := New(Options{APIKeys: []APIKey{{Name: "k", Role: RoleReader}}})
	tok := sign(t, jwt.SigningMethodHS256, []byte{0}, jwt.MapClaims{"sub": "a", "role": "admin", "exp": time.Now().Add(time.Hour).Unix()})
	if _, err := a.Authenticate(tok); !errors.Is(err, ErrTokenInvalid) {
		t.Errorf("an HS256 token on a server without a secret: %v", err)
	}
}

func TestParseAPIKey(t *testing.T) {
	for _, bad := range []string{"", "name", "name:writer", "name:root:" + HashAPIKey("x"), "name:reader:abc", ":reader:" + HashAPIKey("x"), "name:reader:" + HashAPIKey("x") + ":extra"} {
		if _, err := ParseAPIKey(bad); err == nil {
			t.Errorf("ParseAPIKey(%q) accepted it", bad)
		}
	}
	if _, err := ParseAPIKey("my-plain-secret-key"); err == nil || strings.Contains(err.Error(), "my-plain-secret-key") {
		t.Errorf("a plain key pasted as an entry: %v (must be refused without echoing it)", err)
	}
}

func TestBearerToken(t *testing.T) {
	for in, want := range map[string]string{"Bearer abc": "abc", "bearer abc ": "abc", "Basic abc": "", "Bearer": "", "": "", "abc": ""} {
		if got := BearerToken(in); got != want {
			t.Errorf("BearerToken(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestConnLimiter(t *testing.T) {
	l := NewConnLimiter(2)
	alice := Principal{Subject: "alice", Role: RoleReader}
	r1, err := l.Acquire(alice)
	if err != nil {
		t.Fatal(err)
	}
	r2, err := l.Acquire(alice)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := l.Acquire(alice); !errors.As(err, new(ErrTooManyConnections)) {
		t.Fatalf("third connection: %v", err)
	}
	if _, err := l.Acquire(Principal{Subject: "bob"}); err != nil {
		t.Fatalf("another principal: %v", err)
	}
	r1()
	r1() // a second release of the same slot gives back nothing more
	if _, err := l.Acquire(alice); err != nil {
		t.Fatalf("after a release: %v", err)
	}
	if _, err := l.Acquire(alice); err == nil {
		t.Fatal("the double release gave two slots back")
	}
	r2()
	for range 10 {
		if _, err := l.Acquire(Anonymous()); err != nil {
			t.Fatalf("anonymous is capped: %v", err)
		}
	}
}
