package server_test

import (
	"context"
	"net/http"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/require"
	"google.golang.org/grpc/codes"

	registryv1 "tenantry.dev/gen/tenantry/registry/v1"
	"tenantry.dev/platform/grpcerr"
	"tenantry.dev/platform/pgtest"
	"tenantry.dev/tenant-registry/internal/config"
)

// notes is a product component with two migrations.
func notes(extra ...*registryv1.Migration) *registryv1.Component {
	return &registryv1.Component{
		Name:        "components/notes",
		DisplayName: "Notes",
		Migrations: append([]*registryv1.Migration{
			{Version: 1, Name: "create_notes", Sql: `CREATE TABLE notes (id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY, owner uuid NOT NULL, body text NOT NULL)`},
			{Version: 2, Name: "add_title", Sql: `ALTER TABLE notes ADD COLUMN title text NOT NULL DEFAULT ''`},
		}, extra...),
	}
}

func (r *registry) components() registryv1.ComponentServiceClient {
	return registryv1.NewComponentServiceClient(r.conn)
}

func (r *registry) register(c *registryv1.Component) (*registryv1.RegisterComponentResponse, error) {
	return r.components().RegisterComponent(operator(), &registryv1.RegisterComponentRequest{Component: c})
}

// columns lists a table's columns in a schema.
func columns(t *testing.T, db *pgxpool.Pool, schema, table string) []string {
	t.Helper()
	rows, err := db.Query(context.Background(), `SELECT column_name FROM information_schema.columns
		WHERE table_schema = $1 AND table_name = $2 ORDER BY ordinal_position`, schema, table)
	require.NoError(t, err)
	cols, err := pgx.CollectRows(rows, pgx.RowTo[string])
	require.NoError(t, err)
	return cols
}

func (r *registry) versions(slug string) map[string][2]int32 {
	r.t.Helper()
	resp, err := r.components().ListTenantComponents(operator(), &registryv1.ListTenantComponentsRequest{Parent: "tenants/" + slug})
	require.NoError(r.t, err)
	out := map[string][2]int32{}
	for _, c := range resp.GetComponents() {
		out[strings.TrimPrefix(c.GetName(), "tenants/"+slug+"/components/")] = [2]int32{c.GetVersion(), c.GetLatestVersion()}
	}
	return out
}

func TestComponentsGiveEveryNewTenantTheirTables(t *testing.T) {
	t.Parallel()
	r := startRegistry(t, "")

	resp, err := r.register(notes())
	require.NoError(t, err)
	require.Equal(t, []int32{1, 2}, resp.GetAddedVersions())
	require.EqualValues(t, 2, resp.GetComponent().GetLatestVersion())
	require.Len(t, resp.GetComponent().GetMigrations()[0].GetChecksum(), 64)

	acme := r.create("acme")
	require.Equal(t, registryv1.Tenant_STATE_ACTIVE, acme.GetState())
	require.Equal(t, []string{"id", "owner", "body", "title"}, columns(t, r.db, "acme", "notes"),
		"the tenant is ACTIVE with the component's tables already in its schema")
	require.Equal(t, map[string][2]int32{"notes": {2, 2}}, r.versions("acme"))

	t.Run("registering the same list again changes nothing", func(t *testing.T) {
		again, err := r.register(notes())
		require.NoError(t, err)
		require.Empty(t, again.GetAddedVersions())
		require.Equal(t, resp.GetComponent().GetUpdateTime().AsTime(), again.GetComponent().GetUpdateTime().AsTime())
	})

	t.Run("an applied migration's SQL cannot change", func(t *testing.T) {
		changed := notes()
		changed.Migrations[1].Sql = `ALTER TABLE notes ADD COLUMN title varchar(80)`
		_, err := r.register(changed)
		st := requireCode(t, err, codes.FailedPrecondition)
		require.Equal(t, "MIGRATION_APPLIED_CHANGED", grpcerr.Reason(st))
		require.Contains(t, st.Message(), "migration 2")
		got, err := r.components().GetComponent(operator(), &registryv1.GetComponentRequest{Name: "components/notes"})
		require.NoError(t, err)
		require.Equal(t, notes().GetMigrations()[1].GetSql(), got.GetComponent().GetMigrations()[1].GetSql(), "the refused list was stored")
	})

	t.Run("nor can an applied migration be removed", func(t *testing.T) {
		short := notes()
		short.Migrations = short.Migrations[:1]
		_, err := r.register(short)
		requireCode(t, err, codes.FailedPrecondition)
	})

	t.Run("new versions append and reach new tenants; existing ones are left for a fleet migration", func(t *testing.T) {
		more, err := r.register(notes(&registryv1.Migration{Version: 3, Name: "add_pinned", Sql: `ALTER TABLE notes ADD COLUMN pinned boolean NOT NULL DEFAULT false`}))
		require.NoError(t, err)
		require.Equal(t, []int32{3}, more.GetAddedVersions())
		r.create("globex")
		require.Contains(t, columns(t, r.db, "globex", "notes"), "pinned")
		require.Equal(t, map[string][2]int32{"notes": {3, 3}}, r.versions("globex"))
		require.Equal(t, map[string][2]int32{"notes": {2, 3}}, r.versions("acme"), "acme is behind until migrated")
	})

	t.Run("SQL that does not run is refused when registered, naming the version", func(t *testing.T) {
		_, err := r.register(&registryv1.Component{Name: "components/broken", Migrations: []*registryv1.Migration{
			{Version: 1, Name: "ok", Sql: `CREATE TABLE things (id int)`},
			{Version: 2, Name: "typo", Sql: `ALTER TABLE thingz ADD COLUMN x int`},
		}})
		st := requireCode(t, err, codes.InvalidArgument)
		require.Equal(t, "MIGRATION_FAILED", grpcerr.Reason(st))
		require.Contains(t, st.Message(), "migration 2")
		require.Contains(t, st.Message(), `"thingz"`)
		_, err = r.components().GetComponent(operator(), &registryv1.GetComponentRequest{Name: "components/broken"})
		requireCode(t, err, codes.NotFound)
		var scratch int
		require.NoError(t, r.db.QueryRow(context.Background(), `SELECT count(*) FROM pg_namespace WHERE nspname LIKE 'tenantry_try_%'`).Scan(&scratch))
		require.Zero(t, scratch, "the trial left its scratch schema behind")
	})

	t.Run("a version not applied anywhere may still change", func(t *testing.T) {
		_, err := r.register(&registryv1.Component{Name: "components/draft", Migrations: []*registryv1.Migration{{Version: 1, Name: "v1", Sql: `SELECT 1`}}})
		require.NoError(t, err)
		// No tenant was created since: version 1 is applied nowhere.
		// (acme and globex predate the component.)
		changed, err := r.register(&registryv1.Component{Name: "components/draft", Migrations: []*registryv1.Migration{{Version: 1, Name: "v1", Sql: `CREATE TABLE drafts (id int)`}}})
		require.NoError(t, err)
		require.Equal(t, []int32{1}, changed.GetAddedVersions())
	})

	t.Run("components are listed without their SQL", func(t *testing.T) {
		list, err := r.components().ListComponents(operator(), &registryv1.ListComponentsRequest{})
		require.NoError(t, err)
		var names []string
		for _, c := range list.GetComponents() {
			names = append(names, c.GetName())
			for _, m := range c.GetMigrations() {
				require.Empty(t, m.GetSql())
				require.NotEmpty(t, m.GetChecksum())
			}
		}
		require.Equal(t, []string{"components/draft", "components/notes"}, names)
	})
}

func TestComponentRequestsAreValidated(t *testing.T) {
	t.Parallel()
	r := startRegistry(t, "")
	one := []*registryv1.Migration{{Version: 1, Name: "init", Sql: `CREATE TABLE x (id int)`}}
	for _, tc := range []struct {
		name   string
		c      *registryv1.Component
		reason string
	}{
		{"a name that is no component name", &registryv1.Component{Name: "notes", Migrations: one}, "COMPONENT_ID_INVALID"},
		{"an id with a quote", &registryv1.Component{Name: `components/no"tes`, Migrations: one}, "COMPONENT_ID_INVALID"},
		{"no migrations", &registryv1.Component{Name: "components/notes"}, "MIGRATIONS_INVALID"},
		{"versions that skip", &registryv1.Component{Name: "components/notes", Migrations: []*registryv1.Migration{{Version: 2, Name: "init", Sql: "SELECT 1"}}}, "MIGRATIONS_INVALID"},
		{"a migration without SQL", &registryv1.Component{Name: "components/notes", Migrations: []*registryv1.Migration{{Version: 1, Name: "init"}}}, "MIGRATIONS_INVALID"},
		{"a name with spaces", &registryv1.Component{Name: "components/notes", Migrations: []*registryv1.Migration{{Version: 1, Name: "two words", Sql: "SELECT 1"}}}, "MIGRATIONS_INVALID"},
		{"a display name with a direction override", &registryv1.Component{Name: "components/notes", DisplayName: "Notes\u202e", Migrations: one}, "DISPLAY_NAME_INVALID"},
	} {
		t.Run(tc.name+" is refused", func(t *testing.T) {
			_, err := r.register(tc.c)
			st := requireCode(t, err, codes.InvalidArgument)
			require.Equal(t, tc.reason, grpcerr.Reason(st), "%s", st.Message())
		})
	}
	t.Run("the service credential may not register components", func(t *testing.T) {
		_, err := r.components().RegisterComponent(as(serviceToken), &registryv1.RegisterComponentRequest{
			Component: &registryv1.Component{Name: "components/notes", Migrations: one},
		})
		requireCode(t, err, codes.PermissionDenied)
	})
	t.Run("an unknown component is not found", func(t *testing.T) {
		_, err := r.components().GetComponent(operator(), &registryv1.GetComponentRequest{Name: "components/nothing"})
		requireCode(t, err, codes.NotFound)
	})
}

// A tenant in another placement gets the components' tables too, in the
// transaction that creates its schema.
func TestComponentsReachTenantsInOtherPlacements(t *testing.T) {
	t.Parallel()
	otherURL := pgtest.NewDatabase(t)
	r := startRegistry(t, "", withPlacement("eu", otherURL))
	_, err := r.register(notes())
	require.NoError(t, err)
	resp, err := r.client.CreateTenant(operator(), &registryv1.CreateTenantRequest{
		TenantId: "euro", Tenant: &registryv1.Tenant{Placement: "eu"},
	})
	require.NoError(t, err)
	require.Equal(t, registryv1.Tenant_STATE_ACTIVE, resp.GetTenant().GetState())
	other, err := pgxpool.New(context.Background(), otherURL)
	require.NoError(t, err)
	defer other.Close()
	require.Equal(t, []string{"id", "owner", "body", "title"}, columns(t, other, "euro", "notes"))
	require.Equal(t, map[string][2]int32{"notes": {2, 2}}, r.versions("euro"))
}

// The component API over REST, as the HTTP mapping declares it.
func TestComponentsOverREST(t *testing.T) {
	t.Parallel()
	r := startRegistry(t, "")
	body := `{"component":{"name":"components/notes","migrations":[{"version":1,"name":"init","sql":"CREATE TABLE notes (id int)"}]}}`
	code, out := r.call(http.MethodPost, "/v1/components:register", operatorToken, body)
	require.Equal(t, http.StatusOK, code, "%s", out)
	code, out = r.call(http.MethodGet, "/v1/components/notes", operatorToken, "")
	require.Equal(t, http.StatusOK, code, "%s", out)
	require.Contains(t, string(out), "CREATE TABLE notes")
	r.create("acme")
	code, out = r.call(http.MethodGet, "/v1/tenants/acme/components", operatorToken, "")
	require.Equal(t, http.StatusOK, code, "%s", out)
	require.Contains(t, string(out), `"name":"tenants/acme/components/notes"`)
}

// Components share each tenant's schema: one whose tables collide with
// another's is refused at registration, in either order, and tenants can
// still be created.
func TestComponentsThatCollideAreRefused(t *testing.T) {
	t.Parallel()
	r := startRegistry(t, "", func(c *config.Config) { c.SpareSchemas = 0 })
	_, err := r.register(notes())
	require.NoError(t, err)
	for _, id := range []string{"aaa-memo", "zzz-memo"} { // applied before notes, and after
		_, err := r.register(&registryv1.Component{Name: "components/" + id, Migrations: []*registryv1.Migration{
			{Version: 1, Name: "create_notes", Sql: `CREATE TABLE notes (id int)`},
		}})
		st := requireCode(t, err, codes.InvalidArgument)
		require.Equal(t, "MIGRATION_FAILED", grpcerr.Reason(st), st.Message())
		require.Contains(t, st.Message(), `"notes" already exists`)
	}
	r.create("acme")
	require.Equal(t, map[string][2]int32{"notes": {2, 2}}, r.versions("acme"))
}
