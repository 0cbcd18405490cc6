// Package component is how a service puts its tables in every tenant's
// schema, with its own component credential (`tenantry components
// credential <id>`): it registers the component's numbered SQL migrations
// with the registry at start-up, and asks the registry to bring tenants
// behind on them up to date (a fleet migration of this component only,
// optionally of named tenants).
//
// The registry is the only one that applies migrations: in the
// transaction that creates a tenant, and in fleet migrations, always as the
// component's tenant role (package tenantrole). identity uses this package
// for its own tables exactly as a product service does (kit/service wraps
// it for them).
package component

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"strings"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/metadata"
	"google.golang.org/protobuf/types/known/durationpb"

	registryv1 "tenantry.dev/gen/tenantry/registry/v1"
	"tenantry.dev/platform/tenantdb"
	"tenantry.dev/platform/tenantrole"
)

// Client registers and migrates one component with its credential.
type Client struct {
	id          string
	token       string
	displayName string
	migrations  []tenantdb.Migration
	components  registryv1.ComponentServiceClient
	operations  registryv1.OperationServiceClient
}

// New reads the component's migrations, the files dir/NNNN_name.sql of
// fsys, for the component whose token is token; it contacts nothing yet.
func New(registry grpc.ClientConnInterface, token, displayName string, fsys fs.FS, dir string) (*Client, error) {
	id, err := tenantrole.ComponentOf(token)
	if err != nil {
		return nil, fmt.Errorf("component: the component token: %w", err)
	}
	migs, err := tenantdb.LoadMigrations(fsys, dir)
	if err != nil {
		return nil, fmt.Errorf("component %q: load migrations: %w", id, err)
	}
	return &Client{
		id: id, token: token, displayName: displayName, migrations: migs,
		components: registryv1.NewComponentServiceClient(registry),
		operations: registryv1.NewOperationServiceClient(registry),
	}, nil
}

// ID is the component's id, read from its token.
func (c *Client) ID() string { return c.id }

// Latest is the highest version of the component's migrations.
func (c *Client) Latest() int { return len(c.migrations) }

func (c *Client) authorized(ctx context.Context) context.Context {
	return metadata.AppendToOutgoingContext(ctx, "authorization", "Bearer "+c.token)
}

// Register registers the component's migrations with the registry: new
// tenants get them when they are created. Registering the same list again
// changes nothing; a changed migration that a tenant has applied is
// refused (FAILED_PRECONDITION MIGRATION_APPLIED_CHANGED). It returns the
// versions that are new.
func (c *Client) Register(ctx context.Context) ([]int32, error) {
	comp := &registryv1.Component{Name: "components/" + c.id, DisplayName: c.displayName}
	for _, m := range c.migrations {
		comp.Migrations = append(comp.Migrations, &registryv1.Migration{Version: int32(m.Version), Name: m.Name, Sql: m.SQL})
	}
	resp, err := c.components.RegisterComponent(c.authorized(ctx), &registryv1.RegisterComponentRequest{Component: comp})
	if err != nil {
		return nil, fmt.Errorf("register component %q: %w", c.id, err)
	}
	return resp.GetAddedVersions(), nil
}

// FailedError is a migration that ended with tenants it could not migrate.
type FailedError struct {
	Operation string
	Failures  []*registryv1.TenantMigrationFailure
}

func (e *FailedError) Error() string {
	parts := make([]string, 0, min(len(e.Failures), 3))
	for _, f := range e.Failures[:min(len(e.Failures), 3)] {
		parts = append(parts, fmt.Sprintf("%s at version %d: %s", strings.TrimPrefix(f.GetTenant(), "tenants/"), f.GetVersion(), f.GetMessage()))
	}
	more := ""
	if len(e.Failures) > 3 {
		more = fmt.Sprintf(" (and %d more)", len(e.Failures)-3)
	}
	return fmt.Sprintf("%s: %d tenants failed: %s%s", e.Operation, len(e.Failures), strings.Join(parts, "; "), more)
}

// waitStep is how long one WaitOperation call waits for the end.
const waitStep = 20 * time.Second

// MigrateOptions says which tenants a migration considers and how.
type MigrateOptions struct {
	// Tenants are slugs; empty means every tenant.
	Tenants []string
	// Concurrency is how many tenants at once (the registry's default 4
	// when zero).
	Concurrency int
	// Progress, if not nil, is called with the operation's metadata as it
	// goes and once it has ended.
	Progress func(*registryv1.MigrationMetadata)
}

// Migrate asks the registry to bring the tenants behind on this component
// up to date and waits for the operation to end. It returns the ended
// operation; a *FailedError if some tenants failed (the others were
// migrated), or the operation's error.
func (c *Client) Migrate(ctx context.Context, opts MigrateOptions) (*registryv1.Operation, error) {
	req := &registryv1.MigrateTenantsRequest{Components: []string{"components/" + c.id}, Concurrency: int32(opts.Concurrency)}
	for _, s := range opts.Tenants {
		req.Tenants = append(req.Tenants, "tenants/"+s)
	}
	progress := opts.Progress
	resp, err := c.components.MigrateTenants(c.authorized(ctx), req)
	if err != nil {
		return nil, fmt.Errorf("migrate tenants on component %q: %w", c.id, err)
	}
	op := resp.GetOperation()
	for !op.GetDone() {
		if progress != nil {
			progress(op.GetMetadata())
		}
		w, err := c.operations.WaitOperation(c.authorized(ctx), &registryv1.WaitOperationRequest{Name: op.GetName(), Timeout: durationpb.New(waitStep)})
		if err != nil {
			return op, fmt.Errorf("wait for %s: %w", op.GetName(), err)
		}
		op = w.GetOperation()
	}
	if progress != nil {
		progress(op.GetMetadata())
	}
	if e := op.GetError(); e != nil {
		return op, fmt.Errorf("%s ended without finishing: %s (%s)", op.GetName(), e.GetMessage(), e.GetReason())
	}
	if f := op.GetResult().GetFailures(); len(f) > 0 {
		return op, &FailedError{Operation: op.GetName(), Failures: f}
	}
	return op, nil
}

// IsFailed reports whether err is a migration that failed some tenants.
func IsFailed(err error) bool {
	var f *FailedError
	return errors.As(err, &f)
}
