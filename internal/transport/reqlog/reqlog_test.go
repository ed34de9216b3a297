package reqlog

import (
	"bytes"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

func TestMiddleware(t *testing.T) {
	var logs bytes.Buffer
	logger := slog.New(slog.NewJSONHandler(&logs, &slog.HandlerOptions{Level: slog.LevelInfo}))
	var seen string
	h := Middleware(logger, []string{"/healthz"}, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		seen = ID(r.Context())
		if r.URL.Path == "/fail" {
			http.Error(w, "no", http.StatusTeapot)
			return
		}
		_, _ = w.Write([]byte("hello"))
	}))
	for _, tc := range []struct {
		path, sent string
		keep       bool // the client's id is kept
		logged     bool
	}{
		{"/query", "abc-123_x.y", true, true},
		{"/query", "evil\nid", false, true},
		{"/query", strings.Repeat("a", 65), false, true},
		{"/query", "", false, true},
		{"/healthz", "", false, false},
		{"/fail", "", false, true},
	} {
		logs.Reset()
		req := httptest.NewRequest(http.MethodGet, tc.path, nil)
		if tc.sent != "" {
			req.Header.Set(Header, tc.sent)
		}
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		got := rec.Header().Get(Header)
		if got != seen || got == "" || (tc.keep != (got == tc.sent)) || !plainToken(got) {
			t.Errorf("%s %q: response id %q, context id %q", tc.path, tc.sent, got, seen)
		}
		if !tc.logged {
			if logs.Len() != 0 {
				t.Errorf("%s: a quiet path was logged at info: %s", tc.path, logs.String())
			}
			continue
		}
		var line map[string]any
		if err := json.Unmarshal(logs.Bytes(), &line); err != nil {
			t.Fatalf("%s: log %q: %v", tc.path, logs.String(), err)
		}
		if line["request_id"] != got || line["path"] != tc.path || line["status"] != float64(rec.Code) || line["duration"] == nil {
			t.Errorf("%s: log line %v", tc.path, line)
		}
	}
}
