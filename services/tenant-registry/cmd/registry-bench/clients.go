package main

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"time"

	"github.com/google/uuid"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/metadata"
	"google.golang.org/protobuf/types/known/durationpb"

	registryv1 "tenantry.dev/gen/tenantry/registry/v1"
	"tenantry.dev/platform/benchkit"
	"tenantry.dev/platform/tenantdb"
)

const (
	// callTimeout bounds one administrative call (create, list), so that a
	// stuck registry fails the measure instead of the time budget.
	callTimeout = 60 * time.Second
	// listPageSize is the largest page ListTenants serves.
	listPageSize = 1000
)

// clients are gRPC connections to one registry, as other services hold
// them: plaintext over loopback TCP, bearer token in the metadata. Calls are
// spread over several connections, each a TCP connection of its own, so
// the load is not bound by one HTTP/2 connection's flow control.
type clients struct {
	conns   []*grpc.ClientConn
	tenants []registryv1.TenantServiceClient
	health  []healthpb.HealthClient
	tok     tokens
}

// dial opens n connections to addr. grpc.NewClient connects lazily, so the
// first calls (the warm-ups) pay for the handshakes.
func dial(addr string, n int, tok tokens) (*clients, error) {
	c := &clients{tok: tok}
	for range n {
		conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
		if err != nil {
			c.close()
			return nil, fmt.Errorf("connect to the registry at %s: %w", addr, err)
		}
		c.conns = append(c.conns, conn)
		c.tenants = append(c.tenants, registryv1.NewTenantServiceClient(conn))
		c.health = append(c.health, healthpb.NewHealthClient(conn))
	}
	return c, nil
}

func (c *clients) close() {
	for _, conn := range c.conns {
		_ = conn.Close()
	}
}

// asOperator and asService attach a credential to ctx.
func (c *clients) asOperator(ctx context.Context) context.Context {
	return metadata.AppendToOutgoingContext(ctx, "authorization", "Bearer "+c.tok.operator)
}

func (c *clients) asService(ctx context.Context) context.Context {
	return metadata.AppendToOutgoingContext(ctx, "authorization", "Bearer "+c.tok.service)
}

// createTenant creates one tenant the way an operator's tooling would: with
// a request_id, so that a retry could not create it twice.
func (c *clients) createTenant(ctx context.Context, conn int, slug string) (*registryv1.Tenant, error) {
	ctx, cancel := context.WithTimeout(c.asOperator(ctx), callTimeout)
	defer cancel()
	resp, err := c.tenants[conn%len(c.tenants)].CreateTenant(ctx, &registryv1.CreateTenantRequest{
		TenantId: slug,
		Tenant: &registryv1.Tenant{
			DisplayName: "Bench tenant " + slug,
			Labels:      map[string]string{"plan": "standard", "source": "registry-bench"},
		},
		RequestId: uuid.NewString(),
	})
	if err != nil {
		return nil, fmt.Errorf("create tenant %s: %w", slug, err)
	}
	if got := resp.GetTenant(); got.GetSlug() != slug || got.GetState() != registryv1.Tenant_STATE_ACTIVE {
		return nil, fmt.Errorf("create tenant %s: got tenant %q in state %v, want it ACTIVE", slug, got.GetSlug(), got.GetState())
	}
	return resp.GetTenant(), nil
}

// listSchemas pages through every tenant with ListTenants and returns their
// schema names.
func (c *clients) listSchemas(ctx context.Context) ([]string, error) {
	var schemas []string
	token := ""
	for {
		callCtx, cancel := context.WithTimeout(c.asOperator(ctx), callTimeout)
		resp, err := c.tenants[0].ListTenants(callCtx, &registryv1.ListTenantsRequest{PageSize: listPageSize, PageToken: token})
		cancel()
		if err != nil {
			return nil, fmt.Errorf("list tenants after %d: %w", len(schemas), err)
		}
		for _, t := range resp.GetTenants() {
			schemas = append(schemas, t.GetSchema())
		}
		if token = resp.GetNextPageToken(); token == "" {
			return schemas, nil
		}
	}
}

// healthLoad checks grpc.health.v1 the way a load balancer would, with the
// same authorization header as resolves carry so that both send the same
// bytes (health is public: the registry does not check it).
func (c *clients) healthLoad() benchkit.CallFunc {
	return func(ctx context.Context, worker int, _ *rand.Rand) error {
		resp, err := c.health[worker%len(c.health)].Check(c.asService(ctx), &healthpb.HealthCheckRequest{})
		if err != nil {
			return err
		}
		if resp.GetStatus() != healthpb.HealthCheckResponse_SERVING {
			return fmt.Errorf("health is %v", resp.GetStatus())
		}
		return nil
	}
}

// target is a tenant to resolve: a host it is reached by, and its slug.
type target struct {
	host string
	slug string
}

// resolveLoad resolves random targets by host with the service credential,
// as other services do per request, and checks each answer.
func (c *clients) resolveLoad(targets []target) benchkit.CallFunc {
	return func(ctx context.Context, worker int, rng *rand.Rand) error {
		if len(targets) == 0 {
			return errors.New("no tenants to resolve")
		}
		tg := targets[rng.IntN(len(targets))]
		resp, err := c.tenants[worker%len(c.tenants)].ResolveTenant(c.asService(ctx), &registryv1.ResolveTenantRequest{
			Key: &registryv1.ResolveTenantRequest_Host{Host: tg.host},
		})
		if err != nil {
			return fmt.Errorf("resolve %s: %w", tg.host, err)
		}
		if t := resp.GetTenant(); t.GetSlug() != tg.slug || t.GetState() != registryv1.Tenant_STATE_ACTIVE {
			return fmt.Errorf("resolve %s: got tenant %q in state %v, want %q ACTIVE", tg.host, t.GetSlug(), t.GetState(), tg.slug)
		}
		return nil
	}
}

// getTenantLoad reads random targets' tenants with GetTenant and the
// operator credential, and checks each answer.
func (c *clients) getTenantLoad(targets []target) benchkit.CallFunc {
	return func(ctx context.Context, worker int, rng *rand.Rand) error {
		if len(targets) == 0 {
			return errors.New("no tenants to get")
		}
		slug := targets[rng.IntN(len(targets))].slug
		resp, err := c.tenants[worker%len(c.tenants)].GetTenant(c.asOperator(ctx), &registryv1.GetTenantRequest{Name: "tenants/" + slug})
		if err != nil {
			return fmt.Errorf("get tenants/%s: %w", slug, err)
		}
		if t := resp.GetTenant(); t.GetSlug() != slug || t.GetState() != registryv1.Tenant_STATE_ACTIVE {
			return fmt.Errorf("get tenants/%s: got tenant %q in state %v, want it ACTIVE", slug, t.GetSlug(), t.GetState())
		}
		return nil
	}
}

// fleetMigrate starts a fleet migration through the API and waits for its
// operation to end; it returns the operation and the time it took.
func (c *clients) fleetMigrate(ctx context.Context) (*registryv1.Operation, time.Duration, error) {
	start := time.Now()
	comps := registryv1.NewComponentServiceClient(c.conns[0])
	ops := registryv1.NewOperationServiceClient(c.conns[0])
	resp, err := comps.MigrateTenants(c.asOperator(ctx), &registryv1.MigrateTenantsRequest{Concurrency: 4})
	if err != nil {
		return nil, 0, fmt.Errorf("MigrateTenants: %w", err)
	}
	name := resp.GetOperation().GetName()
	for {
		w, err := ops.WaitOperation(c.asOperator(ctx), &registryv1.WaitOperationRequest{Name: name, Timeout: durationpb.New(time.Minute)})
		if err != nil {
			return nil, 0, fmt.Errorf("WaitOperation: %w", err)
		}
		if op := w.GetOperation(); op.GetDone() {
			if op.GetError() != nil {
				return nil, 0, fmt.Errorf("fleet migration ended with %s", op.GetError().GetMessage())
			}
			return op, time.Since(start), nil
		}
	}
}

// registerBenchComponent registers the component the fleet migration rows
// apply: a table, then a column with a default.
func (c *clients) registerBenchComponent(ctx context.Context) error {
	comps := registryv1.NewComponentServiceClient(c.conns[0])
	_, err := comps.RegisterComponent(c.asOperator(ctx), &registryv1.RegisterComponentRequest{Component: &registryv1.Component{
		Name: "components/bench-fleet",
		Migrations: []*registryv1.Migration{
			{Version: 1, Name: "create_items", Sql: `CREATE TABLE fleet_items (id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY, body text NOT NULL)`},
			{Version: 2, Name: "add_status", Sql: `ALTER TABLE fleet_items ADD COLUMN status text NOT NULL DEFAULT 'open'`},
		},
	}})
	if err != nil {
		return fmt.Errorf("RegisterComponent: %w", err)
	}
	return nil
}

// registerComponent registers a component's migrations.
func (c *clients) registerComponent(ctx context.Context, id string, migs []tenantdb.Migration) error {
	comp := &registryv1.Component{Name: "components/" + id}
	for _, m := range migs {
		comp.Migrations = append(comp.Migrations, &registryv1.Migration{Version: int32(m.Version), Name: m.Name, Sql: m.SQL})
	}
	_, err := registryv1.NewComponentServiceClient(c.conns[0]).RegisterComponent(c.asOperator(ctx), &registryv1.RegisterComponentRequest{Component: comp})
	if err != nil {
		return fmt.Errorf("register component %s: %w", id, err)
	}
	return nil
}
