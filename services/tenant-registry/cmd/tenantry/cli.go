package main

import (
	"context"
	"crypto/tls"
	"errors"
	"flag"
	"fmt"
	"io"
	"sort"
	"strings"
	"text/tabwriter"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"

	registryv1 "tenantry.dev/gen/tenantry/registry/v1"
	"tenantry.dev/platform/grpcerr"
)

// usageError is a command line that makes no sense: exit code 2.
type usageError struct{ msg string }

func (e usageError) Error() string { return e.msg }

func usagef(format string, args ...any) error { return usageError{fmt.Sprintf(format, args...)} }

// cli holds the global options and the registry's clients.
type cli struct {
	addr    string
	token   string
	output  string
	tls     bool
	timeout time.Duration
	out     io.Writer
	err     io.Writer

	conn       *grpc.ClientConn
	tenants    registryv1.TenantServiceClient
	components registryv1.ComponentServiceClient
	operations registryv1.OperationServiceClient
	placements registryv1.PlacementServiceClient
}

// parseGlobal reads the options before the command.
func parseGlobal(args []string, lookup func(string) (string, bool)) (*cli, []string, error) {
	env := func(name, def string) string {
		if v, ok := lookup(name); ok && v != "" {
			return v
		}
		return def
	}
	c := &cli{}
	fs := flag.NewFlagSet("tenantry", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.StringVar(&c.addr, "addr", env("TENANTRY_REGISTRY_ADDR", "localhost:50051"), "the registry's gRPC address (TENANTRY_REGISTRY_ADDR)")
	fs.StringVar(&c.output, "output", "text", "text or json")
	fs.BoolVar(&c.tls, "tls", env("TENANTRY_REGISTRY_TLS", "") == "true", "use TLS (TENANTRY_REGISTRY_TLS=true)")
	fs.DurationVar(&c.timeout, "timeout", 30*time.Second, "how long one call may take")
	if err := fs.Parse(args); err != nil {
		return nil, nil, usagef("%v (see 'tenantry help')", err)
	}
	if c.output != "text" && c.output != "json" {
		return nil, nil, usagef("--output must be text or json, not %q", c.output)
	}
	c.token = env("TENANTRY_OPERATOR_TOKEN", "")
	return c, fs.Args(), nil
}

// command is one subcommand.
type command struct {
	name, args, help string
	run              func(c *cli, ctx context.Context, args []string) error
}

func commands() []command {
	return []command{
		{"tenants create", "SLUG [--display-name NAME] [--placement P] [--label k=v ...]", "create a tenant and its schema", (*cli).tenantsCreate},
		{"tenants list", "[--filter EXPR] [--show-deleted]", "list tenants", (*cli).tenantsList},
		{"tenants get", "SLUG", "show one tenant", (*cli).tenantsGet},
		{"tenants suspend", "SLUG", "suspend a tenant", (*cli).tenantsSuspend},
		{"tenants resume", "SLUG", "resume a suspended tenant", (*cli).tenantsResume},
		{"tenants delete", "SLUG [--force]", "delete a tenant (purged after the grace period, or now with --force)", (*cli).tenantsDelete},
		{"tenants move", "SLUG PLACEMENT [--grace D] [--no-wait]", "move a tenant's schema to another placement while it keeps serving; waits until it serves from there", (*cli).tenantsMove},
		{"tenants undelete", "SLUG", "bring back a deleted tenant", (*cli).tenantsUndelete},
		{"domains add", "SLUG HOST [--primary]", "attach a custom domain", (*cli).domainsAdd},
		{"domains remove", "SLUG HOST", "detach a custom domain", (*cli).domainsRemove},
		{"components register", "ID DIR [--display-name NAME]", "register a component's migrations from DIR/NNNN_name.sql", (*cli).componentsRegister},
		{"components list", "", "list components", (*cli).componentsList},
		{"components get", "ID", "show a component with its migrations", (*cli).componentsGet},
		{"components versions", "SLUG", "show each component's version in a tenant", (*cli).componentsVersions},
		{"components credential", "ID", "print the component's token (TENANTRY_COMPONENT_TOKEN of its service)", (*cli).componentsCredential},
		{"migrate", "[--component ID ...] [--tenant SLUG ...] [--dry-run] [--concurrency N] [--lock-timeout D] [--no-wait]", "bring every tenant's (or the named tenants') components up to date (a fleet migration)", (*cli).migrate},
		{"operations list", "", "list operations, newest first", (*cli).operationsList},
		{"operations get", "ID", "show an operation", (*cli).operationsGet},
		{"operations wait", "ID", "wait for an operation to end (a move: until the tenant serves from its new placement), showing progress", (*cli).operationsWait},
		{"operations cancel", "ID", "cancel a running operation", (*cli).operationsCancel},
		{"placements list", "", "list placements (databases of tenant schemas) with their policy and tenants", (*cli).placementsList},
		{"placements get", "NAME", "show a placement", (*cli).placementsGet},
		{"placements update", "NAME [--closed[=false]] [--dedicated[=false]]", "close a placement to new tenants, or dedicate it to one tenant", (*cli).placementsUpdate},
	}
}

// dispatch finds the command named by the first one or two words.
func (c *cli) dispatch(ctx context.Context, args []string) error {
	if len(args) == 0 || args[0] == "help" || args[0] == "-h" || args[0] == "--help" {
		c.help()
		return nil
	}
	for _, cmd := range commands() {
		words := strings.Fields(cmd.name)
		if len(args) >= len(words) && strings.Join(args[:len(words)], " ") == cmd.name {
			if c.token == "" {
				return usagef("set TENANTRY_OPERATOR_TOKEN to the operator credential (make run prints it)")
			}
			if err := c.connect(); err != nil {
				return err
			}
			defer c.conn.Close()
			return cmd.run(c, ctx, args[len(words):])
		}
	}
	return usagef("unknown command %q (see 'tenantry help')", strings.Join(args, " "))
}

func (c *cli) help() {
	fmt.Fprintln(c.out, "usage: tenantry [--addr HOST:PORT] [--output text|json] [--tls] COMMAND")
	fmt.Fprintln(c.out, "Credentials: TENANTRY_OPERATOR_TOKEN; address: TENANTRY_REGISTRY_ADDR (default localhost:50051).")
	fmt.Fprintln(c.out, "\ncommands:")
	w := tabwriter.NewWriter(c.out, 0, 4, 2, ' ', 0)
	for _, cmd := range commands() {
		fmt.Fprintf(w, "  %s %s\t%s\n", cmd.name, cmd.args, cmd.help)
	}
	_ = w.Flush()
}

func (c *cli) connect() error {
	creds := insecure.NewCredentials()
	if c.tls {
		creds = credentials.NewTLS(&tls.Config{MinVersion: tls.VersionTLS12})
	}
	conn, err := grpc.NewClient(c.addr, grpc.WithTransportCredentials(creds))
	if err != nil {
		return usagef("registry address %q: %v", c.addr, err)
	}
	c.conn = conn
	c.tenants = registryv1.NewTenantServiceClient(conn)
	c.components = registryv1.NewComponentServiceClient(conn)
	c.operations = registryv1.NewOperationServiceClient(conn)
	c.placements = registryv1.NewPlacementServiceClient(conn)
	return nil
}

// call returns a context for one call, with the operator credential.
func (c *cli) call(ctx context.Context) (context.Context, context.CancelFunc) {
	ctx = metadata.AppendToOutgoingContext(ctx, "authorization", "Bearer "+c.token)
	return context.WithTimeout(ctx, c.timeout)
}

// print shows an API message: as JSON, or through text.
func (c *cli) print(m proto.Message, text func(w io.Writer)) error {
	if c.output == "json" {
		b, err := protojson.MarshalOptions{Multiline: true, Indent: "  "}.Marshal(m)
		if err != nil {
			return err
		}
		_, err = fmt.Fprintln(c.out, string(b))
		return err
	}
	w := tabwriter.NewWriter(c.out, 0, 4, 2, ' ', 0)
	text(w)
	return w.Flush()
}

// describe turns an API error into one line a person can act on.
func describe(err error) string {
	st, ok := status.FromError(err)
	if !ok {
		return err.Error()
	}
	msg := fmt.Sprintf("%s: %s", st.Code(), st.Message())
	if reason := grpcerr.Reason(st); reason != "" {
		msg += " (" + reason + ")"
	}
	return msg
}

// flags parses a command's flags, which may come before or after its
// positional arguments, and checks how many positional arguments came.
func flags(name string, args []string, want int, define func(fs *flag.FlagSet)) ([]string, error) {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	define(fs)
	var positional []string
	for {
		if err := fs.Parse(args); err != nil {
			return nil, usagef("%s: %v", name, err)
		}
		args = fs.Args()
		if len(args) == 0 {
			break
		}
		positional = append(positional, args[0])
		args = args[1:]
	}
	if want >= 0 && len(positional) != want {
		return nil, usagef("%s takes %d argument(s), got %d (see 'tenantry help')", name, want, len(positional))
	}
	return positional, nil
}

// listFlag collects a repeatable flag.
type listFlag []string

func (l *listFlag) String() string     { return strings.Join(*l, ",") }
func (l *listFlag) Set(v string) error { *l = append(*l, v); return nil }

func labelsOf(l listFlag) (map[string]string, error) {
	out := map[string]string{}
	for _, kv := range l {
		k, v, ok := strings.Cut(kv, "=")
		if !ok {
			return nil, usagef("--label %q: write key=value", kv)
		}
		out[k] = v
	}
	return out, nil
}

func sortedKeys(m map[string]string) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

var errMigrationFailures = errors.New("some tenants failed to migrate (listed above)")
