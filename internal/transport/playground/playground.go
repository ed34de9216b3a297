// Package playground serves Strata's GraphQL Playground: GraphiQL built from pinned npm packages
// (web/playground, `make playground`) into dist/, which is committed and embedded in the binary,
// so that it works on a machine without internet and a plain `go build` includes it. gqlgen's
// own playground handler loads its scripts from a public CDN and shows a blank page there.
package playground

import (
	"embed"
	"io/fs"
	"net/http"

	"github.com/strata-es/strata/internal/transport/webpage"
)

// AssetPrefix is the path under which the page's script and stylesheet are served. The page
// itself is at "/".
const AssetPrefix = "/playground/"

// contentSecurityPolicy lets the page load and talk to nothing but its own origin. GraphiQL's
// stylesheet inlines its fonts and icons as data: URLs. connect-src 'self' also covers the
// subscriptions' WebSocket to ws://<host>/query (wss: behind https): CSP Level 3 matches
// 'self' against ws: and wss: on the page's own host and port; the browser test in
// internal/app opens one under this policy.
const contentSecurityPolicy = "default-src 'none'; script-src 'self'; style-src 'self'; " +
	"img-src 'self' data:; font-src 'self' data:; connect-src 'self'; " +
	"base-uri 'none'; form-action 'none'; frame-ancestors 'none'"

//go:embed all:dist
var dist embed.FS

//go:embed examples.graphql
var examples string

// Examples returns the example operations the Playground opens with: one GraphQL document
// holding every tab's operation (examples.graphql explains its format).
func Examples() string { return examples }

// Handler serves the Playground's page at "/" and its assets under AssetPrefix; any other path
// is not found. Should the assets be missing from dist/ (they are committed, so only a tree that
// lost them builds such a binary), it answers 503, saying how to build them.
func Handler() http.Handler {
	files, err := fs.Sub(dist, "dist")
	if err != nil {
		panic(err) // the embed pattern guarantees the directory
	}
	return handlerFor(files)
}

// handlerFor serves files as the page.
func handlerFor(files fs.FS) http.Handler {
	return webpage.Handler(webpage.Page{
		Files: files, Path: "/", AssetPrefix: AssetPrefix, CSP: contentSecurityPolicy,
		Missing: "the Playground's assets are not built into this binary: run `make playground` and build again",
	})
}
