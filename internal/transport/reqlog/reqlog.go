// Package reqlog gives every HTTP request an id and logs one line when it ends: method, path,
// status, duration. The id comes from the client's X-Request-Id when it is a plain token, else
// it is made here; it is sent back in the response and carried in the request's context, so
// the GraphQL layer's lines about the same request carry it too. Bodies, query variables and
// credentials are never logged.
package reqlog

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"slices"
	"time"
)

// Header is the request id's header, in both directions.
const Header = "X-Request-Id"

type idKey struct{}

// ID returns the request id ctx carries, or "".
func ID(ctx context.Context) string {
	id, _ := ctx.Value(idKey{}).(string)
	return id
}

// WithID returns ctx carrying the request id id.
func WithID(ctx context.Context, id string) context.Context {
	return context.WithValue(ctx, idKey{}, id)
}

// Middleware assigns request ids and logs each request's end with logger. WebSocket
// connections are logged when they close, with how long they were open. Requests for the quiet
// paths (probes and scrapes, every few seconds) are logged at debug level unless they fail.
func Middleware(logger *slog.Logger, quiet []string, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		id := r.Header.Get(Header)
		if !plainToken(id) {
			id = newID()
		}
		w.Header().Set(Header, id)
		rec := &recorder{ResponseWriter: w, status: http.StatusOK}
		next.ServeHTTP(rec, r.WithContext(WithID(r.Context(), id)))
		status := rec.status
		if rec.hijacked {
			status = http.StatusSwitchingProtocols
		}
		level := slog.LevelInfo
		switch {
		case status >= 500:
			level = slog.LevelWarn
		case status < 400 && slices.Contains(quiet, r.URL.Path):
			level = slog.LevelDebug
		}
		logger.LogAttrs(r.Context(), level, "http request",
			slog.String("request_id", id), slog.String("method", r.Method), slog.String("path", r.URL.Path),
			slog.Int("status", status), slog.Duration("duration", time.Since(start)), slog.Int64("bytes", rec.bytes))
	})
}

// plainToken accepts ids of up to 64 letters, digits, '-', '_' and '.', so a client cannot
// write anything else into the logs through its id.
func plainToken(s string) bool {
	if s == "" || len(s) > 64 {
		return false
	}
	for _, c := range []byte(s) {
		ok := c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_' || c == '.'
		if !ok {
			return false
		}
	}
	return true
}

func newID() string {
	var b [12]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails (Go 1.24+)
	return hex.EncodeToString(b[:])
}

// recorder notes the status and size of a response, and whether the connection was taken
// over (a WebSocket).
type recorder struct {
	http.ResponseWriter
	status      int
	bytes       int64
	wroteHeader bool
	hijacked    bool
}

func (r *recorder) WriteHeader(code int) {
	if !r.wroteHeader {
		r.status, r.wroteHeader = code, true
	}
	r.ResponseWriter.WriteHeader(code)
}

func (r *recorder) Write(b []byte) (int, error) {
	r.wroteHeader = true
	n, err := r.ResponseWriter.Write(b)
	r.bytes += int64(n)
	return n, err
}

// Flush passes flushes through (streaming responses).
func (r *recorder) Flush() {
	if f, ok := r.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

// Hijack lets the WebSocket upgrade take the connection.
func (r *recorder) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	h, ok := r.ResponseWriter.(http.Hijacker)
	if !ok {
		return nil, nil, errors.New("reqlog: the response writer cannot be hijacked")
	}
	r.hijacked = true
	return h.Hijack()
}

// Unwrap gives http.ResponseController the writer underneath.
func (r *recorder) Unwrap() http.ResponseWriter { return r.ResponseWriter }
