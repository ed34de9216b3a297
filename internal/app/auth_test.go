package app

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/strata-es/strata/internal/service/auth"
	"github.com/strata-es/strata/internal/testsupport/dbtest"
	"github.com/strata-es/strata/internal/testsupport/wsclient"
)

// authServer is a server with every kind of credential configured.
type authServer struct {
	*serveRun
	secret []byte
	ecKey  *ecdsa.PrivateKey
	admin  string // an admin API key
	url    string // its database
}

func startAuthServer(t *testing.T, extra ...string) *authServer {
	t.Helper()
	dir := t.TempDir()
	s := &authServer{secret: []byte("a-test-secret-that-is-long-enough-for-hs256"), admin: "admin-key-for-tests", url: dbtest.URL(t)}
	secretFile := filepath.Join(dir, "secret")
	if err := os.WriteFile(secretFile, append(s.secret, '\n'), 0o600); err != nil {
		t.Fatal(err)
	}
	var err error
	if s.ecKey, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader); err != nil {
		t.Fatal(err)
	}
	der, err := x509.MarshalPKIXPublicKey(&s.ecKey.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	keyFile := filepath.Join(dir, "es256.pem")
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	args := append([]string{"--jwt-secret-file", secretFile, "--jwt-public-keys", keyFile,
		"--api-keys", "ops:admin:" + auth.HashAPIKey(s.admin), "--max-connections-per-principal", "2"}, extra...)
	s.serveRun = startServeOn(t, s.url, args...)
	return s
}

// token signs an HS256 token for sub with role, valid for ttl.
func (s *authServer) token(t *testing.T, sub, role string, ttl time.Duration) string {
	t.Helper()
	tok, err := jwt.NewWithClaims(jwt.SigningMethodHS256, jwt.MapClaims{"sub": sub, "role": role, "exp": time.Now().Add(ttl).Unix()}).SignedString(s.secret)
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

const registerMutation = `mutation { registerUser(name: "Ann", email: "ann@example.com") { position } }`

// Every request needs a credential; each role may do what it may and no more; refusals say
// why with a code and write nothing.
func TestAuthenticationAndRoles(t *testing.T) {
	s := startAuthServer(t)
	a := s.addr
	reader := s.token(t, "rita", "reader", time.Hour)
	writer := s.token(t, "walt", "writer", time.Hour)
	es, err := jwt.NewWithClaims(jwt.SigningMethodES256, jwt.MapClaims{"sub": "erin", "role": "writer", "exp": time.Now().Add(time.Hour).Unix()}).SignedString(s.ecKey)
	if err != nil {
		t.Fatal(err)
	}
	forged, err := jwt.NewWithClaims(jwt.SigningMethodHS256, jwt.MapClaims{"sub": "mallory", "role": "admin", "exp": time.Now().Add(time.Hour).Unix()}).SignedString([]byte("not-the-servers-secret-not-the-servers"))
	if err != nil {
		t.Fatal(err)
	}
	none, err := jwt.NewWithClaims(jwt.SigningMethodNone, jwt.MapClaims{"sub": "mallory", "role": "admin", "exp": time.Now().Add(time.Hour).Unix()}).SignedString(jwt.UnsafeAllowNoneSignatureType)
	if err != nil {
		t.Fatal(err)
	}
	expired := s.token(t, "rita", "reader", -time.Minute)

	for _, tc := range []struct {
		name, token, query string
		status             int
		code, message      string
	}{
		{"no token", "", `{ projections { name } }`, 401, "UNAUTHENTICATED", "authentication required"},
		{"forged signature", forged, `{ projections { name } }`, 401, "UNAUTHENTICATED", "signature"},
		{"alg none", none, `{ projections { name } }`, 401, "UNAUTHENTICATED", "not valid"},
		{"expired", expired, `{ projections { name } }`, 401, "UNAUTHENTICATED", "expired"},
		{"unknown API key", "admin-key-for-tests!", `{ projections { name } }`, 401, "UNAUTHENTICATED", "not valid"},
		{"reader queries", reader, `{ projections { name } }`, 200, "", ""},
		{"reader registers a user", reader, registerMutation, 200, "FORBIDDEN", "needs the writer role"},
		{"reader appends", reader, `mutation { appendEvents(streamId: "s-1", events: [{type: "T", data: {}}]) { position } }`, 200, "FORBIDDEN", "needs the writer role"},
		{"writer rebuilds", writer, `mutation { rebuildProjection(name: "users") { name } }`, 200, "FORBIDDEN", "needs the admin role"},
		{"writer hides a rebuild behind a fragment", writer, `mutation { ...F } fragment F on Mutation { rebuildProjection(name: "users") { name } }`, 200, "FORBIDDEN", "needs the admin role"},
		{"writer forgets a user", writer, `mutation { forgetUser(id: "0195c0de-0000-7000-8000-000000000000") { position } }`, 200, "FORBIDDEN", "needs the admin role"},
		{"writer deletes a stream", writer, `mutation { deleteStream(streamId: "s-1") { position } }`, 200, "FORBIDDEN", "needs the admin role"},
		{"writer truncates a stream", writer, `mutation { setStreamMetadata(streamId: "s-1", truncateBefore: 2) { id } }`, 200, "FORBIDDEN", "needs the admin role"},
		{"writer appends", writer, `mutation { appendEvents(streamId: "s-1", events: [{type: "T", data: {}}]) { position } }`, 200, "", ""},
		{"ES256 writer registers", es, registerMutation, 200, "", ""},
		{"admin API key rebuilds", s.admin, `mutation { rebuildProjection(name: "users") { name } }`, 200, "", ""},
	} {
		status, r := gqlAs(t, a, tc.token, tc.query, nil)
		if status != tc.status || r.code() != tc.code || (tc.code != "" && !strings.Contains(r.Errors[0].Message, tc.message)) {
			t.Errorf("%s: %d %+v, want %d %q saying %q", tc.name, status, r.Errors, tc.status, tc.code, tc.message)
		}
	}
	// Exactly the two allowed writes happened: one append to s-1, one registration (a user
	// stream and its email claim). Counted in the table: allEvents only shows events once no
	// older transaction anywhere on the shared cluster could still commit before them.
	rows, err := dbtest.PoolFor(t, s.url, 2).Query(t.Context(), `SELECT split_part(stream_id, '-', 1), count(*) FROM events GROUP BY 1`)
	if err != nil {
		t.Fatal(err)
	}
	streams := map[string]int{}
	for rows.Next() {
		var category string
		var n int
		if err := rows.Scan(&category, &n); err != nil {
			t.Fatal(err)
		}
		streams[category] = n
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	if len(streams) != 2 || streams["s"] != 1 || streams["user"] != 1 {
		t.Errorf("events after the refusals, by category: %v; want the writer's append and the ES256 registration only", streams)
	}
}

// A WebSocket connection authenticates in connection_init; it is closed when its token
// expires; one principal holds at most --max-connections-per-principal of them.
func TestWebSocketAuthentication(t *testing.T) {
	s := startAuthServer(t)
	url := "ws://" + s.addr + "/query"
	ctx := t.Context()

	// No credential: refused with 4401.
	_, err := wsclient.Dial(ctx, url, wsclient.TransportWS, nil, nil)
	var closed *wsclient.ErrClosed
	if !errors.As(err, &closed) || closed.Code != 4401 || !strings.Contains(closed.Text, "authentication required") {
		t.Errorf("connection without a token: %v, want a close with 4401", err)
	}
	// A reader subscribes with its token in the payload; a mutation over the socket is refused.
	reader := s.token(t, "rita", "reader", time.Hour)
	c, err := wsclient.Dial(ctx, url, wsclient.TransportWS, nil, map[string]any{"Authorization": "Bearer " + reader})
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = c.Close() }()
	if err := c.Subscribe("m", registerMutation, nil); err != nil {
		t.Fatal(err)
	}
	if r, err := c.Next(20 * time.Second); err != nil || !strings.Contains(string(r.Errors), "FORBIDDEN") {
		t.Errorf("a reader's mutation over WebSocket: %+v %v", r, err)
	}
	// The same principal's second connection (the header form) is allowed, the third is not.
	h := http.Header{"Authorization": {"Bearer " + reader}}
	c2, err := wsclient.Dial(ctx, url, wsclient.TransportWS, h, nil)
	if err != nil {
		t.Fatal(err)
	}
	_, err = wsclient.Dial(ctx, url, wsclient.TransportWS, h, nil)
	if !errors.As(err, &closed) || closed.Code != 4429 || !strings.Contains(closed.Text, "too many connections") {
		t.Errorf("third connection of one principal: %v, want a close with 4429", err)
	}
	// Closing one gives its place back.
	_ = c2.Close()
	deadline := time.Now().Add(20 * time.Second)
	for {
		c3, err := wsclient.Dial(ctx, url, wsclient.TransportWS, h, nil)
		if err == nil {
			_ = c3.Close()
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("a place freed by a closed connection was never given back: %v", err)
		}
		time.Sleep(50 * time.Millisecond)
	}

	// A token that expires while its subscription runs: the connection is closed, saying why.
	short := s.token(t, "sam", "reader", 2*time.Second)
	e, err := wsclient.Dial(ctx, url, wsclient.GraphQLWS, nil, map[string]any{"token": short})
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = e.Close() }()
	if err := e.Subscribe("1", `subscription { events { id } }`, nil); err != nil {
		t.Fatal(err)
	}
	for {
		_, err := e.Next(30 * time.Second)
		if errors.As(err, &closed) {
			if closed.Code != 4401 || !strings.Contains(closed.Text, "expired") {
				t.Errorf("close at expiry: %d %q", closed.Code, closed.Text)
			}
			break
		}
		if err != nil {
			t.Fatalf("waiting for the close at expiry: %v", err)
		}
	}
}

// CORS is closed unless origins are configured; then only they get the headers.
func TestCORS(t *testing.T) {
	preflight := func(addr, origin string) http.Header {
		req, err := http.NewRequestWithContext(t.Context(), http.MethodOptions, "http://"+addr+"/query", nil)
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Origin", origin)
		req.Header.Set("Access-Control-Request-Method", "POST")
		req.Header.Set("Access-Control-Request-Headers", "authorization,content-type") // as browsers send it: lower case, sorted
		resp, err := testHTTP.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		_ = resp.Body.Close()
		return resp.Header
	}
	closedSrv := startServeOn(t, dbtest.URL(t))
	if h := preflight(closedSrv.addr, "https://app.example"); h.Get("Access-Control-Allow-Origin") != "" {
		t.Errorf("CORS without configured origins: %v", h)
	}
	open := startServeOn(t, dbtest.URL(t), "--cors-origins", "https://app.example")
	if h := preflight(open.addr, "https://app.example"); h.Get("Access-Control-Allow-Origin") != "https://app.example" ||
		!strings.Contains(strings.ToLower(h.Get("Access-Control-Allow-Headers")), "authorization") {
		t.Errorf("CORS preflight from the configured origin: %v", h)
	}
	if h := preflight(open.addr, "https://evil.example"); h.Get("Access-Control-Allow-Origin") != "" {
		t.Errorf("CORS preflight from another origin: %v", h)
	}
}
