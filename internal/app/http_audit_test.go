package app

import (
	"context"
	"encoding/json"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/strata-es/strata/internal/testsupport/dbtest"
)

// httpAuditDir is web/http-audit: graphql-http, pinned by its package-lock.json, and the script
// that runs its server audits.
const httpAuditDir = "../../web/http-audit"

// httpAudit is one audit's result as web/http-audit/audit.mjs prints it.
type httpAudit struct {
	ID         string `json:"id"`
	Name       string `json:"name"`
	Status     string `json:"status"` // ok, or graphql-http's notice (MAY), warn (SHOULD), error (MUST)
	Reason     string `json:"reason"`
	HTTPStatus int    `json:"httpStatus"`
}

// The GraphQL over HTTP specification's compliance suite (graphql-http's server audits: every
// MUST, SHOULD and MAY it checks), run by Node against the real `strata serve`, passes whole.
func TestGraphQLOverHTTPAudits(t *testing.T) {
	node, err := exec.LookPath("node")
	if err != nil {
		t.Fatalf("the GraphQL over HTTP audit runs Node.js: %v; install Node.js and npm (.ci/run does)", err)
	}
	installNodePackages(t, httpAuditDir, "graphql-http")
	script, err := filepath.Abs(filepath.Join(httpAuditDir, "audit.mjs"))
	if err != nil {
		t.Fatal(err)
	}
	srv := startServeOn(t, dbtest.URL(t))

	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, node, script, "http://"+srv.addr+"/query")
	cmd.Dir = filepath.Dir(script)
	cmd.WaitDelay = 5 * time.Second
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("the audit script failed: %v (context: %v); stderr:\n%s", err, context.Cause(ctx), stderr.String())
	}
	var results []httpAudit
	if err := json.Unmarshal(out, &results); err != nil {
		t.Fatalf("the audit script printed %.500q, not its results: %v", out, err)
	}
	// graphql-http 1.23.1 has 61 server audits; fewer means the script stopped listing some.
	if len(results) < 61 {
		t.Errorf("%d audits ran, want graphql-http's 61", len(results))
	}
	passed := 0
	for _, r := range results {
		if r.Status == "ok" {
			passed++
			continue
		}
		t.Errorf("audit %s failed (%s): %s: %s (HTTP %d)", r.ID, r.Status, r.Name, r.Reason, r.HTTPStatus)
	}
	t.Logf("%d of %d GraphQL over HTTP audits passed", passed, len(results))
}
