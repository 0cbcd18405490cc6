// Command tenantry is the operator's command line for Tenantry: a thin
// client of the registry's public gRPC API, like django-tenants'
// create_tenant and migrate_schemas. It reads the same environment as
// `make run` (TENANTRY_OPERATOR_TOKEN, TENANTRY_REGISTRY_ADDR).
//
//	tenantry tenants create acme --display-name "Acme"
//	tenantry components register notes ./migrations
//	tenantry migrate
//
// `tenantry help` lists every command. --output json prints the API's
// messages as JSON, for scripts.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	os.Exit(run(ctx, os.Args[1:], os.LookupEnv, os.Stdout, os.Stderr))
}

// run executes one command and returns the process's exit code: 0 on
// success, 1 when the command ran and failed (a tenant that failed to
// migrate, an API error), 2 for a command line that makes no sense.
func run(ctx context.Context, args []string, lookup func(string) (string, bool), stdout, stderr io.Writer) int {
	cli, rest, err := parseGlobal(args, lookup)
	if err != nil {
		fmt.Fprintln(stderr, "tenantry:", err)
		return 2
	}
	cli.out, cli.err = stdout, stderr
	err = cli.dispatch(ctx, rest)
	var usage usageError
	switch {
	case err == nil:
		return 0
	case errors.As(err, &usage):
		fmt.Fprintln(stderr, "tenantry:", err)
		return 2
	default:
		fmt.Fprintln(stderr, "tenantry:", describe(err))
		return 1
	}
}
