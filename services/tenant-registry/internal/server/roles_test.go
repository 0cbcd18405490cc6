package server_test

import (
	"context"
	"errors"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/stretchr/testify/require"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	registryv1 "tenantry.dev/gen/tenantry/registry/v1"
	"tenantry.dev/platform/grpcerr"
	"tenantry.dev/platform/tenantrole"
	"tenantry.dev/tenant-registry/internal/config"
)

// vault stands in for identity: another component whose table holds
// secrets in the same tenant schemas.
func vault() *registryv1.Component {
	return &registryv1.Component{Name: "components/vault", Migrations: []*registryv1.Migration{
		{Version: 1, Name: "create_secrets", Sql: `CREATE TABLE secrets (hash text NOT NULL); INSERT INTO secrets VALUES ('argon2id$...')`},
	}}
}

// credential asks the registry for a component's token, as an operator.
func (r *registry) credential(id string) string {
	r.t.Helper()
	resp, err := r.components().GetComponentCredential(operator(), &registryv1.GetComponentCredentialRequest{Name: "components/" + id})
	require.NoError(r.t, err)
	return resp.GetToken()
}

// connectAs logs in to the registry's database as a component's role in a
// tenant, with the password derived from the component's token, the way a
// product service in any language does.
func (r *registry) connectAs(tenant *registryv1.Tenant, componentID, token string) (*pgx.Conn, error) {
	r.t.Helper()
	cfg, err := pgx.ParseConfig(r.db.Config().ConnString())
	require.NoError(r.t, err)
	cfg.User = tenantrole.RoleName(tenant.GetUid(), componentID)
	cfg.Password = tenantrole.Password(token, tenant.GetUid())
	conn, err := pgx.ConnectConfig(context.Background(), cfg)
	if err == nil {
		r.t.Cleanup(func() { _ = conn.Close(context.Background()) })
	}
	return conn, err
}

func sqlState(err error) string {
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		return pgErr.Code
	}
	return ""
}

// A component's tenant role reaches its own tables in its own tenant and
// nothing else, whatever SQL it runs: PostgreSQL refuses the rest, so a SQL
// injection in a product service stays inside the tenant it was serving.
func TestTenantRolesConfineAComponentToItsTenant(t *testing.T) {
	t.Parallel()
	for _, spares := range []int{0, 2} {
		name := map[int]string{0: "schema built at create", 2: "schema claimed from the spares"}[spares]
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			r := startRegistry(t, "", func(c *config.Config) { c.SpareSchemas = spares })
			_, err := r.register(notes())
			require.NoError(t, err)
			_, err = r.register(vault())
			require.NoError(t, err)
			if spares > 0 {
				r.waitSpares(spares)
			}
			acme, globex := r.create("acme"), r.create("globex")
			token := r.credential("notes")

			conn, err := r.connectAs(acme, "notes", token)
			require.NoError(t, err, "the role logs in with the password derived from the component's token")
			ctx := context.Background()
			var schema string
			require.NoError(t, conn.QueryRow(ctx, `SELECT current_schema()`).Scan(&schema))
			require.Equal(t, "acme", schema, "the role's search path is its tenant's schema")
			_, err = conn.Exec(ctx, `INSERT INTO notes (owner, body) VALUES (gen_random_uuid(), 'mine')`)
			require.NoError(t, err, "the role owns its component's tables")
			var n int
			require.NoError(t, conn.QueryRow(ctx, `SELECT count(*) FROM notes`).Scan(&n))
			require.Equal(t, 1, n)

			refused := map[string]string{
				"another tenant's table":         `SELECT * FROM globex.notes`,
				"another component's table":      `SELECT * FROM acme.secrets`,
				"the registry's tables":          `SELECT * FROM tenantry_registry.tenants`,
				"the migration bookkeeping":      `SELECT * FROM tenantry_meta.schema_versions`,
				"becoming another tenant's role": `SET ROLE ` + pgx.Identifier{tenantrole.RoleName(globex.GetUid(), "notes")}.Sanitize(),
				"becoming the other component":   `SELECT set_config('role', '` + tenantrole.RoleName(acme.GetUid(), "vault") + `', false)`,
				"creating objects in its schema": `CREATE FUNCTION acme.lower(text) RETURNS text LANGUAGE sql AS 'SELECT $1'`,
				"creating a schema":              `CREATE SCHEMA sneaky`,
			}
			for what, sql := range refused {
				_, err := conn.Exec(ctx, sql)
				require.Error(t, err, what)
				require.Equal(t, "42501", sqlState(err), "%s: want insufficient_privilege, got %v", what, err)
			}

			// The other tenant's role of the same component has its own
			// password: the token derives a different one per tenant.
			_, err = r.connectAs(globex, "notes", token)
			require.NoError(t, err)
			cfg, err := pgx.ParseConfig(r.db.Config().ConnString())
			require.NoError(t, err)
			cfg.User = tenantrole.RoleName(globex.GetUid(), "notes")
			cfg.Password = tenantrole.Password(token, acme.GetUid())
			_, err = pgx.ConnectConfig(ctx, cfg)
			require.Equal(t, "28P01", sqlState(err), "acme's password does not open globex's role: %v", err)
			_, err = r.connectAs(acme, "notes", r.credential("vault"))
			require.Equal(t, "28P01", sqlState(err), "another component's token does not open notes' role: %v", err)
		})
	}
}

// Roles are named by the tenant's uid and dropped with its schema: a slug
// purged and created again inherits nothing.
func TestTenantRolesEndWithTheTenant(t *testing.T) {
	t.Parallel()
	r := startRegistry(t, "", func(c *config.Config) { c.SpareSchemas = 0 })
	_, err := r.register(notes())
	require.NoError(t, err)
	first := r.create("acme")
	token := r.credential("notes")
	old, err := r.connectAs(first, "notes", token)
	require.NoError(t, err)

	_, err = r.client.DeleteTenant(operator(), &registryv1.DeleteTenantRequest{Name: "tenants/acme", Force: true})
	require.NoError(t, err)
	var roles int
	require.NoError(t, r.db.QueryRow(context.Background(), `SELECT count(*) FROM pg_roles WHERE rolname = $1`,
		tenantrole.RoleName(first.GetUid(), "notes")).Scan(&roles))
	require.Zero(t, roles, "the purge drops the tenant's roles")
	require.Error(t, old.Ping(context.Background()), "and ends their sessions")

	again := r.create("acme")
	_, err = r.connectAs(first, "notes", token)
	require.Equal(t, "28P01", sqlState(err), "the purged tenant's role is gone: %v", err)
	conn, err := r.connectAs(again, "notes", token)
	require.NoError(t, err)
	var n int
	require.NoError(t, conn.QueryRow(context.Background(), `SELECT count(*) FROM notes`).Scan(&n))
	require.Zero(t, n)
}

// Migrations run with the tenant role's rights and cannot climb out of
// them to the registry's own user, so a component's token may register
// its own migrations.
func TestComponentMigrationsCannotEscapeTheirRole(t *testing.T) {
	t.Parallel()
	r := startRegistry(t, "", func(c *config.Config) { c.SpareSchemas = 0 })
	_, err := r.register(vault())
	require.NoError(t, err)
	acme := r.create("acme")
	token := r.credential("notes")
	own := as(token)

	escapes := map[string]string{
		"RESET ROLE":             `RESET ROLE; CREATE TABLE escaped ()`,
		"set_config role":        `SELECT set_config('role', 'postgres', false); CREATE TABLE escaped ()`,
		"SET SESSION AUTH":       `SET SESSION AUTHORIZATION postgres`,
		"nested DO":              `DO $$BEGIN EXECUTE 'SET ROLE postgres'; END$$`,
		"read the other's table": `CREATE TABLE stolen AS SELECT * FROM secrets`,
		"another tenant":         `CREATE TABLE stolen AS SELECT * FROM "` + acme.GetSchema() + `".secrets`,
		"superuser only":         `CREATE EXTENSION IF NOT EXISTS pg_stat_statements`,
		"alter the registry":     `DROP TABLE tenantry_registry.tenants`,
	}
	for what, sql := range escapes {
		_, err := r.components().RegisterComponent(own, &registryv1.RegisterComponentRequest{Component: &registryv1.Component{
			Name: "components/notes", Migrations: []*registryv1.Migration{{Version: 1, Name: "escape", Sql: sql}},
		}})
		st := requireCode(t, err, codes.InvalidArgument)
		require.Equal(t, "MIGRATION_FAILED", grpcerr.Reason(st), "%s: %s", what, st.Message())
	}
	var n int
	require.NoError(t, r.db.QueryRow(context.Background(), `SELECT count(*) FROM tenantry_registry.tenants`).Scan(&n))
	require.Equal(t, 1, n)

	// Its own migrations it registers, and nothing else.
	_, err = r.components().RegisterComponent(own, &registryv1.RegisterComponentRequest{Component: notes()})
	require.NoError(t, err)
	_, err = r.components().GetComponent(own, &registryv1.GetComponentRequest{Name: "components/notes"})
	require.NoError(t, err)
	for what, call := range map[string]func() error{
		"register another": func() error {
			_, err := r.components().RegisterComponent(own, &registryv1.RegisterComponentRequest{Component: vault()})
			return err
		},
		"get another": func() error {
			_, err := r.components().GetComponent(own, &registryv1.GetComponentRequest{Name: "components/vault"})
			return err
		},
		"create a tenant": func() error {
			_, err := r.client.CreateTenant(own, &registryv1.CreateTenantRequest{TenantId: "evil", Tenant: &registryv1.Tenant{DisplayName: "Evil"}})
			return err
		},
		"get credentials": func() error {
			_, err := r.components().GetComponentCredential(own, &registryv1.GetComponentCredentialRequest{Name: "components/vault"})
			return err
		},
		"migrate the fleet": func() error {
			_, err := r.components().MigrateTenants(own, &registryv1.MigrateTenantsRequest{})
			return err
		},
	} {
		require.Equal(t, codes.PermissionDenied, status.Code(call()), what)
	}
	_, err = r.client.ResolveTenant(own, &registryv1.ResolveTenantRequest{Key: &registryv1.ResolveTenantRequest_Slug{Slug: "acme"}})
	require.NoError(t, err, "a component resolves tenants")
	_, err = r.client.ResolveTenant(as(token+"x"), &registryv1.ResolveTenantRequest{Key: &registryv1.ResolveTenantRequest_Slug{Slug: "acme"}})
	requireCode(t, err, codes.Unauthenticated)
}

// Without TENANTRY_COMPONENT_KEY there are no component credentials, and
// the registry says how to get them.
func TestComponentCredentialNeedsTheKey(t *testing.T) {
	t.Parallel()
	r := startRegistry(t, "", func(c *config.Config) { c.ComponentKey = "" })
	_, err := r.components().GetComponentCredential(operator(), &registryv1.GetComponentCredentialRequest{Name: "components/notes"})
	st := requireCode(t, err, codes.FailedPrecondition)
	require.Equal(t, "COMPONENT_KEY_UNSET", grpcerr.Reason(st))
	require.Contains(t, st.Message(), "TENANTRY_COMPONENT_KEY")
}
