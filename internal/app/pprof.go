package app

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/pprof"
	"time"
)

// profileServer serves Go's profiles (net/http/pprof) on a listener of its own, apart from the
// API's: --pprof-addr, a loopback address (config.Validate), off unless set. Its handlers are
// registered on its own mux, never on http.DefaultServeMux, so the API never serves them.
type profileServer struct {
	ln  net.Listener
	srv *http.Server
}

// listenPprof takes addr for the profiles; nil when addr is empty.
func listenPprof(addr string) (*profileServer, error) {
	if addr == "" {
		return nil, nil //nolint:nilnil // no address, no server
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("listen on --pprof-addr %s: %w", addr, err)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	// A CPU profile or a trace runs for its ?seconds= (30 by default), so no write timeout.
	return &profileServer{ln: ln, srv: &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}}, nil
}

func (p *profileServer) addr() string { return p.ln.Addr().String() }

// serve serves until close.
func (p *profileServer) serve() {
	if err := p.srv.Serve(p.ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
		_ = p.ln.Close()
	}
}

// close stops it, a profile in progress included; nil does nothing.
func (p *profileServer) close() {
	if p == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	if err := p.srv.Shutdown(ctx); err != nil {
		_ = p.srv.Close()
	}
	_ = p.ln.Close()
}
