package wsconn

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/99designs/gqlgen/graphql/handler/transport"
	"github.com/gorilla/websocket"
)

// The Origin check: the server's own origin, the allowed ones and non-browser clients (no
// Origin) get in; any other origin is refused before the upgrade.
func TestOriginCheck(t *testing.T) {
	impl := Implementation{AllowedOrigins: []string{"https://app.example.com"}}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, err := impl.Accept(w, r, transport.WebsocketAcceptOptions{Subprotocols: []string{"graphql-transport-ws"}})
		if err != nil {
			return
		}
		_ = c.Close()
	}))
	defer srv.Close()
	url := "ws" + strings.TrimPrefix(srv.URL, "http")
	for _, tc := range []struct {
		origin string
		ok     bool
	}{
		{"", true},
		{srv.URL, true},
		{"https://app.example.com", true},
		{"https://evil.example.com", false},
		{"http://app.example.com", false},
		{"null", false},
	} {
		h := http.Header{}
		if tc.origin != "" {
			h.Set("Origin", tc.origin)
		}
		d := websocket.Dialer{HandshakeTimeout: 5 * time.Second, Subprotocols: []string{"graphql-transport-ws"}}
		c, resp, err := d.Dial(url, h)
		if resp != nil {
			_ = resp.Body.Close()
		}
		if c != nil {
			_ = c.Close()
		}
		if (err == nil) != tc.ok {
			t.Errorf("origin %q: dial error %v, want accepted=%v", tc.origin, err, tc.ok)
		}
		if !tc.ok && (resp == nil || resp.StatusCode != http.StatusForbidden) {
			t.Errorf("origin %q: refused with %v, want 403", tc.origin, resp)
		}
	}
}

func TestCloseReasonFitsAFrame(t *testing.T) {
	if got := truncateReason(strings.Repeat("x", 200)); len(got) > 123 {
		t.Errorf("reason of %d bytes", len(got))
	}
	if got := truncateReason("short"); got != "short" {
		t.Errorf("short reason changed to %q", got)
	}
}
