// Package auth decides who a request comes from: a bearer token is either a JWT (HS256 with a
// shared secret, RS256 or ES256 with configured public keys) or a static API key, stored in the
// configuration only as its SHA-256 hash. Each carries one role; what a role may do is decided
// in one place by the GraphQL layer (graph/authz.go), not here.
package auth

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// Role is what a principal may do; each role may do everything the ones below it may.
type Role int

// Roles, weakest first.
const (
	RoleNone   Role = iota
	RoleReader      // queries and subscriptions
	RoleWriter      // also domain mutations and appendEvents
	RoleAdmin       // also projection rebuilds and /metrics
)

func (r Role) String() string {
	switch r {
	case RoleReader:
		return "reader"
	case RoleWriter:
		return "writer"
	case RoleAdmin:
		return "admin"
	}
	return "none"
}

// ParseRole reads a role's name.
func ParseRole(s string) (Role, error) {
	switch s {
	case "reader":
		return RoleReader, nil
	case "writer":
		return RoleWriter, nil
	case "admin":
		return RoleAdmin, nil
	}
	return RoleNone, fmt.Errorf("unknown role %q (want reader, writer or admin)", s)
}

// Principal is who a request comes from.
type Principal struct {
	// Subject names the principal: a JWT's sub, or "apikey:" and the key's name. Empty for
	// the anonymous principal of a server without authentication.
	Subject string
	Role    Role
	// Expires is when the credential stops being valid; zero for API keys and anonymous.
	Expires time.Time
}

// Anonymous is every client of a server with no authentication configured. Such a server only
// listens on loopback (or was told --insecure), so its clients may do anything.
func Anonymous() Principal { return Principal{Role: RoleAdmin} }

type principalKey struct{}

// WithPrincipal returns ctx carrying p.
func WithPrincipal(ctx context.Context, p Principal) context.Context {
	return context.WithValue(ctx, principalKey{}, p)
}

// FromContext returns the principal ctx carries.
func FromContext(ctx context.Context) (Principal, bool) {
	p, ok := ctx.Value(principalKey{}).(Principal)
	return p, ok
}

// Errors of Authenticate. Their messages go to the client as they are: they say what is wrong
// with the credential without echoing it.
var (
	ErrNoToken      = errors.New("authentication required: send Authorization: Bearer <token>")
	ErrTokenExpired = errors.New("the token has expired")
	ErrTokenInvalid = errors.New("the token is not valid")
)

// Options configure an Authenticator. Its zero value turns authentication off.
type Options struct {
	// HS256Secret verifies HS256 tokens; empty accepts none.
	HS256Secret []byte
	// PublicKeys verify RS256 (RSA keys) and ES256 (P-256 keys) tokens.
	PublicKeys []any
	// Issuer and Audience, when set, must match the token's iss and aud.
	Issuer, Audience string
	// APIKeys are static keys by their hash.
	APIKeys []APIKey
	// Leeway tolerates clock skew on exp and nbf.
	Leeway time.Duration
	// Now is the clock; nil means time.Now.
	Now func() time.Time
}

// APIKey is a static key: a name for logs, its role, and the SHA-256 of the key.
type APIKey struct {
	Name string
	Role Role
	Hash [sha256.Size]byte
}

// ParseAPIKey reads "name:role:sha256-hex", the form the configuration stores keys in.
func ParseAPIKey(s string) (APIKey, error) {
	parts := strings.Split(s, ":")
	if len(parts) != 3 || parts[0] == "" {
		return APIKey{}, fmt.Errorf("API key %q: want name:role:sha256-hex", redact(s))
	}
	role, err := ParseRole(parts[1])
	if err != nil {
		return APIKey{}, fmt.Errorf("API key %s: %w", parts[0], err)
	}
	raw, err := hex.DecodeString(parts[2])
	if err != nil || len(raw) != sha256.Size {
		return APIKey{}, fmt.Errorf("API key %s: the third part must be the key's SHA-256 as 64 hex digits", parts[0])
	}
	k := APIKey{Name: parts[0], Role: role}
	copy(k.Hash[:], raw)
	return k, nil
}

// HashAPIKey is the hash the configuration stores for key.
func HashAPIKey(key string) string {
	sum := sha256.Sum256([]byte(key))
	return hex.EncodeToString(sum[:])
}

// redact keeps the name of a malformed key entry and hides the rest, which may be a secret
// pasted in the wrong place.
func redact(s string) string {
	if i := strings.IndexByte(s, ':'); i >= 0 {
		return s[:i] + ":…"
	}
	return "…"
}

// LoadPublicKey reads one PEM public key (RSA, or ECDSA on P-256) from path.
func LoadPublicKey(path string) (any, error) {
	pemBytes, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("JWT public key: %w", err)
	}
	if k, err := jwt.ParseRSAPublicKeyFromPEM(pemBytes); err == nil {
		return k, nil
	}
	k, err := jwt.ParseECPublicKeyFromPEM(pemBytes)
	if err != nil {
		return nil, fmt.Errorf("JWT public key %s: neither an RSA nor an ECDSA public key in PEM", path)
	}
	if k.Curve != elliptic.P256() {
		return nil, fmt.Errorf("JWT public key %s: ES256 needs a P-256 key", path)
	}
	return k, nil
}

// Authenticator checks bearer tokens.
type Authenticator struct {
	opts    Options
	methods []string
	parser  *jwt.Parser
}

// New returns an Authenticator for opts.
func New(opts Options) *Authenticator {
	if opts.Now == nil {
		opts.Now = time.Now
	}
	a := &Authenticator{opts: opts}
	if len(opts.HS256Secret) > 0 {
		a.methods = append(a.methods, jwt.SigningMethodHS256.Alg())
	}
	for _, k := range opts.PublicKeys {
		switch k.(type) {
		case *rsa.PublicKey:
			a.methods = append(a.methods, jwt.SigningMethodRS256.Alg())
		case *ecdsa.PublicKey:
			a.methods = append(a.methods, jwt.SigningMethodES256.Alg())
		}
	}
	popts := []jwt.ParserOption{
		jwt.WithValidMethods(a.methods), // never "none", never a method without a key
		jwt.WithExpirationRequired(),    // a token that never expires is refused
		jwt.WithLeeway(opts.Leeway),
		jwt.WithTimeFunc(opts.Now),
	}
	if opts.Issuer != "" {
		popts = append(popts, jwt.WithIssuer(opts.Issuer))
	}
	if opts.Audience != "" {
		popts = append(popts, jwt.WithAudience(opts.Audience))
	}
	a.parser = jwt.NewParser(popts...)
	return a
}

// Enabled reports whether any credential is configured; without one every client is Anonymous.
func (a *Authenticator) Enabled() bool {
	return a != nil && (len(a.methods) > 0 || len(a.opts.APIKeys) > 0)
}

// claims are the JWT claims Strata reads: the registered ones and role.
type claims struct {
	jwt.RegisteredClaims
	Role string `json:"role"`
}

// Authenticate returns the principal of a bearer token (without the "Bearer " prefix).
func (a *Authenticator) Authenticate(token string) (Principal, error) {
	if token == "" {
		return Principal{}, ErrNoToken
	}
	if strings.Count(token, ".") == 2 && len(a.methods) > 0 {
		return a.jwt(token)
	}
	return a.apiKey(token)
}

func (a *Authenticator) jwt(token string) (Principal, error) {
	var c claims
	_, err := a.parser.ParseWithClaims(token, &c, a.key)
	switch {
	case errors.Is(err, jwt.ErrTokenExpired):
		return Principal{}, ErrTokenExpired
	case err != nil:
		return Principal{}, fmt.Errorf("%w: %s", ErrTokenInvalid, jwtReason(err))
	}
	role, err := ParseRole(c.Role)
	if err != nil {
		return Principal{}, fmt.Errorf("%w: the role claim must be reader, writer or admin", ErrTokenInvalid)
	}
	if c.Subject == "" {
		return Principal{}, fmt.Errorf("%w: the sub claim is missing", ErrTokenInvalid)
	}
	return Principal{Subject: c.Subject, Role: role, Expires: c.ExpiresAt.Time}, nil
}

// jwtReason says which check a token failed, in words that reveal nothing about the keys.
func jwtReason(err error) string {
	switch {
	case errors.Is(err, jwt.ErrTokenMalformed):
		return "malformed"
	case errors.Is(err, jwt.ErrTokenSignatureInvalid), errors.Is(err, jwt.ErrTokenUnverifiable):
		return "signature not verified"
	case errors.Is(err, jwt.ErrTokenRequiredClaimMissing):
		return "the exp claim is missing"
	case errors.Is(err, jwt.ErrTokenNotValidYet), errors.Is(err, jwt.ErrTokenUsedBeforeIssued):
		return "not valid yet"
	case errors.Is(err, jwt.ErrTokenInvalidIssuer):
		return "wrong issuer"
	case errors.Is(err, jwt.ErrTokenInvalidAudience):
		return "wrong audience"
	}
	return "refused"
}

// key picks the verification key for a token's algorithm (the parser has already refused
// algorithms not configured).
func (a *Authenticator) key(t *jwt.Token) (any, error) {
	switch t.Method.(type) {
	case *jwt.SigningMethodHMAC:
		return a.opts.HS256Secret, nil
	case *jwt.SigningMethodRSA:
		return a.keysOf(func(k any) bool { _, ok := k.(*rsa.PublicKey); return ok }), nil
	case *jwt.SigningMethodECDSA:
		return a.keysOf(func(k any) bool { _, ok := k.(*ecdsa.PublicKey); return ok }), nil
	}
	return nil, jwt.ErrTokenUnverifiable
}

// keysOf returns the configured public keys of one kind; the parser tries each in turn, so
// keys can be rotated by configuring the old and the new one together.
func (a *Authenticator) keysOf(match func(any) bool) jwt.VerificationKeySet {
	var set jwt.VerificationKeySet
	for _, k := range a.opts.PublicKeys {
		if match(k) {
			set.Keys = append(set.Keys, k)
		}
	}
	return set
}

func (a *Authenticator) apiKey(token string) (Principal, error) {
	sum := sha256.Sum256([]byte(token))
	found := -1
	// Every key is compared, in constant time, so the time taken says nothing about which
	// key came close.
	for i, k := range a.opts.APIKeys {
		if subtle.ConstantTimeCompare(sum[:], k.Hash[:]) == 1 {
			found = i
		}
	}
	if found < 0 {
		return Principal{}, ErrTokenInvalid
	}
	k := a.opts.APIKeys[found]
	return Principal{Subject: "apikey:" + k.Name, Role: k.Role}, nil
}

// BearerToken takes the token out of an Authorization header value; "" when there is none.
func BearerToken(header string) string {
	const prefix = "bearer "
	if len(header) > len(prefix) && strings.EqualFold(header[:len(prefix)], prefix) {
		return strings.TrimSpace(header[len(prefix):])
	}
	return ""
}
