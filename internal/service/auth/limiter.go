package auth

import (
	"fmt"
	"sync"
)

// ConnLimiter caps the WebSocket connections one principal holds open at once, so that one
// leaked token cannot take every socket the server has.
type ConnLimiter struct {
	max  int
	mu   sync.Mutex
	open map[string]int
}

// NewConnLimiter returns a limiter allowing max connections per principal; max <= 0 allows any.
func NewConnLimiter(max int) *ConnLimiter {
	return &ConnLimiter{max: max, open: map[string]int{}}
}

// ErrTooManyConnections refuses a connection beyond the cap.
type ErrTooManyConnections struct{ Max int }

func (e ErrTooManyConnections) Error() string {
	return fmt.Sprintf("too many connections for this principal; the limit is %d", e.Max)
}

// Acquire takes a connection slot for p and returns the function that gives it back (call it
// exactly once). The anonymous principal of a server without authentication is not capped:
// it is every client at once.
func (l *ConnLimiter) Acquire(p Principal) (release func(), err error) {
	if l == nil || l.max <= 0 || p.Subject == "" {
		return func() {}, nil
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.open[p.Subject] >= l.max {
		return nil, ErrTooManyConnections{Max: l.max}
	}
	l.open[p.Subject]++
	var once sync.Once
	return func() {
		once.Do(func() {
			l.mu.Lock()
			defer l.mu.Unlock()
			if l.open[p.Subject]--; l.open[p.Subject] == 0 {
				delete(l.open, p.Subject)
			}
		})
	}, nil
}
