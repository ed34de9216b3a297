// Command strata is the Strata event store server: `strata serve`, `strata migrate`,
// `strata bench append`. `strata help` lists them; every flag has an environment fallback.
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"

	"github.com/strata-es/strata/internal/app"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := app.Main(ctx, os.Args[1:], os.Stdout, os.Stderr, os.Getenv)
	stop()
	os.Exit(code)
}
