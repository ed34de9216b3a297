package app

import (
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/strata-es/strata/internal/testsupport/dbtest"
)

// --pprof-addr serves Go's profiles on a loopback listener of its own, which ends with the
// server; the API never serves them; a non-loopback address is refused.
func TestPprofOnItsOwnLoopbackAddress(t *testing.T) {
	t.Parallel()
	get := func(url string) (int, string, error) {
		resp, err := (&http.Client{Timeout: 10 * time.Second}).Get(url)
		if err != nil {
			return 0, "", err
		}
		defer func() { _ = resp.Body.Close() }()
		body, err := io.ReadAll(resp.Body)
		return resp.StatusCode, string(body), err
	}
	pprofAddr := freeAddr(t)
	srv := startServeOn(t, dbtest.URL(t), "--pprof-addr", pprofAddr)
	code, body, err := get("http://" + pprofAddr + "/debug/pprof/")
	if err != nil || code != http.StatusOK || !strings.Contains(body, "goroutine") {
		t.Errorf("GET /debug/pprof/ on --pprof-addr: %d %v, body %.200q", code, err, body)
	}
	if code, _, err := get("http://" + pprofAddr + "/debug/pprof/heap?debug=1"); err != nil || code != http.StatusOK {
		t.Errorf("the heap profile: %d %v", code, err)
	}
	if code, _, err := get("http://" + srv.addr + "/debug/pprof/"); err != nil || code == http.StatusOK {
		t.Errorf("the API's /debug/pprof/ answered %d %v; it must not serve profiles", code, err)
	}
	if err := srv.stop(t); err != nil {
		t.Fatalf("serve: %v", err)
	}
	if _, _, err := get("http://" + pprofAddr + "/debug/pprof/"); err == nil {
		t.Error("the profiles are still served after the server stopped")
	}

	var stderr syncBuffer
	err = Run(t.Context(), []string{"serve", "--addr", freeAddr(t), "--pprof-addr", "0.0.0.0:6060"}, &syncBuffer{}, &stderr, envOf(map[string]string{"DATABASE_URL": dbtest.URL(t)}))
	if err == nil || !strings.Contains(stderr.String()+err.Error(), "--pprof-addr 0.0.0.0:6060 is reachable from other machines") {
		t.Errorf("a non-loopback --pprof-addr: %v; stderr:\n%s", err, stderr.String())
	}
}
