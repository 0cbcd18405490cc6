package server_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"

	"github.com/stretchr/testify/require"
	"google.golang.org/grpc/codes"
	"google.golang.org/protobuf/types/known/fieldmaskpb"

	registryv1 "tenantry.dev/gen/tenantry/registry/v1"
	"tenantry.dev/platform/grpcerr"
	"tenantry.dev/platform/pgtest"
	"tenantry.dev/platform/readmetour"
	"tenantry.dev/platform/tenantrole"
)

// withPlacements starts a registry with a database of its own for each
// named placement besides default.
func startWithPlacements(t *testing.T, names ...string) *registry {
	t.Helper()
	opts := make([]registryOption, len(names))
	for i, name := range names {
		opts[i] = withPlacement(name, pgtest.NewDatabase(t))
	}
	return startRegistry(t, "", opts...)
}

func (r *registry) placements() registryv1.PlacementServiceClient {
	return registryv1.NewPlacementServiceClient(r.conn)
}

// createIn creates a tenant, in the named placement unless it is empty.
func (r *registry) createIn(slug, placement string) (*registryv1.Tenant, error) {
	resp, err := r.client.CreateTenant(operator(), &registryv1.CreateTenantRequest{
		TenantId: slug,
		Tenant:   &registryv1.Tenant{DisplayName: "Tenant " + slug, Placement: placement},
	})
	return resp.GetTenant(), err
}

// setPolicy changes the named fields of a placement's policy.
func (r *registry) setPolicy(name string, closed, dedicated bool, fields ...string) (*registryv1.Placement, error) {
	resp, err := r.placements().UpdatePlacement(operator(), &registryv1.UpdatePlacementRequest{
		Placement:  &registryv1.Placement{Name: "placements/" + name, Closed: closed, Dedicated: dedicated},
		UpdateMask: &fieldmaskpb.FieldMask{Paths: fields},
	})
	return resp.GetPlacement(), err
}

func (r *registry) mustSetPolicy(name string, closed, dedicated bool, fields ...string) {
	r.t.Helper()
	_, err := r.setPolicy(name, closed, dedicated, fields...)
	require.NoError(r.t, err)
}

func requireReason(t *testing.T, err error, code codes.Code, reason string) {
	t.Helper()
	st := requireCode(t, err, code)
	require.Equal(t, reason, grpcerr.Reason(st), "message: %s", st.Message())
}

func TestNewTenantsGoToTheOpenPlacementWithTheFewestTenants(t *testing.T) {
	t.Parallel()
	r := startWithPlacements(t, "eu", "us")

	steps := []struct {
		name      string
		before    func()
		slug      string
		named     string
		placement string
	}{
		{name: "all empty: the first by name", slug: "one", placement: "default"},
		{name: "then the next empty one", slug: "two", placement: "eu"},
		{name: "and the last", slug: "three", placement: "us"},
		{name: "a named placement is taken as named", slug: "four", named: "us", placement: "us"},
		{name: "ties go to the first by name", slug: "five", placement: "default"},
		{name: "the fewest wins", slug: "six", placement: "eu"},
		{
			name:   "a closed placement is never chosen",
			before: func() { r.mustSetPolicy("default", true, false, "closed") },
			slug:   "seven", placement: "eu",
		},
		{
			name: "deleted tenants count until they are purged",
			before: func() {
				_, err := r.client.DeleteTenant(operator(), &registryv1.DeleteTenantRequest{Name: "tenants/seven"})
				require.NoError(t, err)
			},
			slug: "eight", placement: "us",
		},
	}
	for _, s := range steps {
		t.Run(s.name, func(t *testing.T) {
			if s.before != nil {
				s.before()
			}
			created, err := r.createIn(s.slug, s.named)
			require.NoError(t, err)
			require.Equal(t, s.placement, created.GetPlacement())
		})
	}

	t.Run("the counts are listed", func(t *testing.T) {
		resp, err := r.placements().ListPlacements(operator(), &registryv1.ListPlacementsRequest{})
		require.NoError(t, err)
		got := map[string]int64{}
		for _, p := range resp.GetPlacements() {
			got[p.GetName()] = p.GetTenantCount()
		}
		require.Equal(t, map[string]int64{"placements/default": 2, "placements/eu": 3, "placements/us": 3}, got)
	})
	t.Run("with every placement closed or dedicated, a tenant must name one", func(t *testing.T) {
		r.mustSetPolicy("eu", true, false, "closed")
		r.mustSetPolicy("us", true, false, "closed")
		_, err := r.createIn("nowhere", "")
		requireReason(t, err, codes.FailedPrecondition, "NO_OPEN_PLACEMENT")
		_, err = r.client.GetTenant(operator(), &registryv1.GetTenantRequest{Name: "tenants/nowhere"})
		requireCode(t, err, codes.NotFound)
	})
}

func TestAClosedPlacementTakesNoNewTenants(t *testing.T) {
	t.Parallel()
	r := startWithPlacements(t, "eu")
	_, err := r.createIn("resident", "eu")
	require.NoError(t, err)
	closed, err := r.setPolicy("eu", true, false, "closed")
	require.NoError(t, err)
	require.True(t, closed.GetClosed())
	require.NotNil(t, closed.GetUpdateTime())

	t.Run("naming it is refused", func(t *testing.T) {
		_, err := r.createIn("newcomer", "eu")
		requireReason(t, err, codes.FailedPrecondition, "PLACEMENT_CLOSED")
		_, err = r.client.GetTenant(operator(), &registryv1.GetTenantRequest{Name: "tenants/newcomer"})
		requireCode(t, err, codes.NotFound)
	})
	t.Run("its tenants stay and are served", func(t *testing.T) {
		res, err := r.client.ResolveTenant(as(serviceToken), &registryv1.ResolveTenantRequest{Key: &registryv1.ResolveTenantRequest_Slug{Slug: "resident"}})
		require.NoError(t, err)
		require.Equal(t, registryv1.Tenant_STATE_ACTIVE, res.GetTenant().GetState())
	})
	t.Run("reopened, it takes them again", func(t *testing.T) {
		r.mustSetPolicy("eu", false, false, "closed")
		created, err := r.createIn("newcomer", "eu")
		require.NoError(t, err)
		require.Equal(t, "eu", created.GetPlacement())
	})
	t.Run("an unknown placement is refused as before", func(t *testing.T) {
		_, err := r.createIn("lost", "mars")
		requireReason(t, err, codes.InvalidArgument, "PLACEMENT_UNKNOWN")
		_, err = r.setPolicy("mars", true, false)
		requireReason(t, err, codes.NotFound, "PLACEMENT_NOT_FOUND")
	})
}

func TestADedicatedPlacementHoldsOneTenant(t *testing.T) {
	t.Parallel()
	r := startWithPlacements(t, "solo", "shared")
	r.mustSetPolicy("solo", false, true, "dedicated")

	t.Run("a tenant that names no placement does not go there", func(t *testing.T) {
		for _, slug := range []string{"first", "second", "third"} {
			created, err := r.createIn(slug, "")
			require.NoError(t, err)
			require.NotEqual(t, "solo", created.GetPlacement())
		}
	})
	t.Run("the tenant that names it gets it", func(t *testing.T) {
		created, err := r.createIn("big", "solo")
		require.NoError(t, err)
		require.Equal(t, "solo", created.GetPlacement())
		require.Equal(t, registryv1.Tenant_STATE_ACTIVE, created.GetState())
	})
	t.Run("a second one is refused", func(t *testing.T) {
		_, err := r.createIn("bigger", "solo")
		requireReason(t, err, codes.FailedPrecondition, "PLACEMENT_DEDICATED_TAKEN")
	})
	t.Run("a deleted tenant keeps it until purged", func(t *testing.T) {
		_, err := r.client.DeleteTenant(operator(), &registryv1.DeleteTenantRequest{Name: "tenants/big"})
		require.NoError(t, err)
		_, err = r.createIn("bigger", "solo")
		requireReason(t, err, codes.FailedPrecondition, "PLACEMENT_DEDICATED_TAKEN")
		_, err = r.client.DeleteTenant(operator(), &registryv1.DeleteTenantRequest{Name: "tenants/big", Force: true})
		require.NoError(t, err)
		created, err := r.createIn("bigger", "solo")
		require.NoError(t, err)
		require.Equal(t, "solo", created.GetPlacement())
	})
	t.Run("a placement holding two tenants cannot be made dedicated", func(t *testing.T) {
		_, err := r.createIn("also-shared", "shared")
		require.NoError(t, err)
		_, err = r.createIn("again-shared", "shared")
		require.NoError(t, err)
		_, err = r.setPolicy("shared", false, true, "dedicated")
		requireReason(t, err, codes.FailedPrecondition, "PLACEMENT_HOLDS_TENANTS")
		got, err := r.placements().GetPlacement(operator(), &registryv1.GetPlacementRequest{Name: "placements/shared"})
		require.NoError(t, err)
		require.False(t, got.GetPlacement().GetDedicated())
	})
	t.Run("one holding one tenant can", func(t *testing.T) {
		require.Equal(t, 1, tenantsIn(t, r, "solo"))
		r.mustSetPolicy("solo", false, false, "dedicated")
		r.mustSetPolicy("solo", false, true, "dedicated")
	})
}

// Concurrent creates naming one empty dedicated placement: exactly one
// wins. And a placement made dedicated while creates pour into it ends
// with one tenant at most, or the change is refused.
func TestConcurrentCreatesCannotShareADedicatedPlacement(t *testing.T) {
	t.Parallel()
	r := startWithPlacements(t, "solo", "busy")
	r.mustSetPolicy("solo", false, true, "dedicated")
	const racers = 8

	t.Run("creates naming one dedicated placement", func(t *testing.T) {
		errs := make([]error, racers)
		var wg sync.WaitGroup
		for i := range racers {
			wg.Go(func() { _, errs[i] = r.createIn(fmt.Sprintf("racer-%d", i), "solo") })
		}
		wg.Wait()
		won := 0
		for _, err := range errs {
			if err == nil {
				won++
				continue
			}
			requireReason(t, err, codes.FailedPrecondition, "PLACEMENT_DEDICATED_TAKEN")
		}
		require.Equal(t, 1, won)
		require.Equal(t, 1, tenantsIn(t, r, "solo"))
	})
	t.Run("creates racing the change to dedicated", func(t *testing.T) {
		var (
			wg        sync.WaitGroup
			updateErr error
		)
		for i := range racers {
			wg.Go(func() { _, _ = r.createIn(fmt.Sprintf("busy-%d", i), "busy") })
			if i == racers/4 {
				wg.Go(func() { _, updateErr = r.setPolicy("busy", false, true, "dedicated") })
			}
		}
		wg.Wait()
		n := tenantsIn(t, r, "busy")
		if updateErr == nil {
			require.LessOrEqual(t, n, 1, "made dedicated, it holds one tenant at most")
		} else {
			requireReason(t, updateErr, codes.FailedPrecondition, "PLACEMENT_HOLDS_TENANTS")
			require.Equal(t, racers, n, "the change was refused, so every create went through")
		}
	})
}

// tenantsIn asks the registry database how many tenants a placement holds.
func tenantsIn(t *testing.T, r *registry, placement string) int {
	t.Helper()
	var n int
	err := r.db.QueryRow(context.Background(), `SELECT count(*) FROM tenantry_registry.tenants WHERE placement = $1`, placement).Scan(&n)
	require.NoError(t, err)
	return n
}

func TestPlacementsAreTheOperatorsAlone(t *testing.T) {
	t.Parallel()
	r := startWithPlacements(t, "eu")
	calls := map[string]func(ctx context.Context) error{
		"ListPlacements": func(ctx context.Context) error {
			_, err := r.placements().ListPlacements(ctx, &registryv1.ListPlacementsRequest{})
			return err
		},
		"GetPlacement": func(ctx context.Context) error {
			_, err := r.placements().GetPlacement(ctx, &registryv1.GetPlacementRequest{Name: "placements/eu"})
			return err
		},
		"UpdatePlacement": func(ctx context.Context) error {
			_, err := r.placements().UpdatePlacement(ctx, &registryv1.UpdatePlacementRequest{
				Placement: &registryv1.Placement{Name: "placements/eu", Closed: true},
			})
			return err
		},
	}
	callers := []struct {
		name string
		ctx  context.Context
		want codes.Code
	}{
		{"anonymous", context.Background(), codes.Unauthenticated},
		{"a wrong token", as("wrong-token-wrong-token"), codes.Unauthenticated},
		{"the service credential", as(serviceToken), codes.PermissionDenied},
		{"a component's credential", as(tenantrole.ComponentToken([]byte(componentKey), "notes")), codes.PermissionDenied},
	}
	for _, c := range callers {
		for method, call := range calls {
			t.Run(c.name+" cannot call "+method, func(t *testing.T) {
				requireCode(t, call(c.ctx), c.want)
			})
		}
	}
	got, err := r.placements().GetPlacement(operator(), &registryv1.GetPlacementRequest{Name: "placements/eu"})
	require.NoError(t, err)
	require.False(t, got.GetPlacement().GetClosed(), "no refused call changed it")
}

func TestPlacementsOverREST(t *testing.T) {
	t.Parallel()
	euURL := pgtest.NewDatabase(t)
	r := startRegistry(t, "", withPlacement("eu", euURL))
	op := operatorToken
	code, body := r.call(http.MethodPost, "/v1/tenants?tenantId=resident", op, `{"placement":"eu"}`)
	require.Equal(t, http.StatusOK, code, "%s", body)

	type placement struct {
		Name, DatabaseHost, DatabaseName, TenantCount, Etag string
		Closed, Dedicated, RegistryDatabase                 bool
	}
	t.Run("list", func(t *testing.T) {
		code, body := r.call(http.MethodGet, "/v1/placements", op, "")
		require.Equal(t, http.StatusOK, code, "%s", body)
		var resp struct{ Placements []placement }
		require.NoError(t, json.Unmarshal(body, &resp))
		require.Len(t, resp.Placements, 2)
		def, eu := resp.Placements[0], resp.Placements[1]
		require.Equal(t, "placements/default", def.Name)
		require.True(t, def.RegistryDatabase)
		require.Equal(t, "placements/eu", eu.Name)
		require.False(t, eu.RegistryDatabase)
		require.Equal(t, "1", eu.TenantCount, "int64 is a string in JSON")
		u, err := url.Parse(euURL)
		require.NoError(t, err)
		require.Equal(t, u.Host, eu.DatabaseHost)
		require.Equal(t, u.Path[1:], eu.DatabaseName)
		if pw, ok := u.User.Password(); ok && pw != "" {
			require.NotContains(t, string(body), pw, "no credentials")
		}
	})

	cases := []struct {
		name, method, path, token, body string
		want                            int
		check                           func(p placement)
	}{
		{"get one", http.MethodGet, "/v1/placements/eu", op, "", http.StatusOK,
			func(p placement) { require.Equal(t, "placements/eu", p.Name) }},
		{"get an unknown one", http.MethodGet, "/v1/placements/mars", op, "", http.StatusNotFound, nil},
		{"close it (the mask from the body)", http.MethodPatch, "/v1/placements/eu", op, `{"closed":true}`, http.StatusOK,
			func(p placement) { require.True(t, p.Closed); require.False(t, p.Dedicated) }},
		{"make it dedicated, closed stays", http.MethodPatch, "/v1/placements/eu?updateMask=dedicated", op, `{"dedicated":true}`, http.StatusOK,
			func(p placement) { require.True(t, p.Closed); require.True(t, p.Dedicated) }},
		{"with a stale etag", http.MethodPatch, "/v1/placements/eu", op, `{"closed":false,"etag":"\"1\""}`, http.StatusConflict, nil},
		{"with the current etag", http.MethodPatch, "/v1/placements/eu?updateMask=closed", op, `{"closed":true,"etag":"\"2\""}`, http.StatusOK,
			func(p placement) { require.Equal(t, `"3"`, p.Etag) }},
		{"an output-only field", http.MethodPatch, "/v1/placements/eu?updateMask=tenantCount", op, `{"tenantCount":"0"}`, http.StatusBadRequest, nil},
		{"a bad name", http.MethodGet, "/v1/placements/EU", op, "", http.StatusBadRequest, nil},
		{"the service credential", http.MethodGet, "/v1/placements", serviceToken, "", http.StatusForbidden, nil},
		{"no credential", http.MethodGet, "/v1/placements", "", "", http.StatusUnauthorized, nil},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			code, body := r.call(c.method, c.path, c.token, c.body)
			require.Equal(t, c.want, code, "%s", body)
			if code >= 400 {
				require.NotEmpty(t, decodeError(t, body).Message)
				return
			}
			if c.check != nil {
				var p placement
				if c.method == http.MethodPatch || c.method == http.MethodGet {
					var resp struct{ Placement placement }
					require.NoError(t, json.Unmarshal(body, &resp))
					p = resp.Placement
				}
				c.check(p)
			}
		})
	}
	t.Run("a tenant naming the closed placement is refused over REST too", func(t *testing.T) {
		code, body := r.call(http.MethodPost, "/v1/tenants?tenantId=newcomer", op, `{"placement":"eu"}`)
		require.Equal(t, http.StatusBadRequest, code, "%s", body)
		require.Contains(t, string(body), "PLACEMENT_CLOSED")
	})
}

// The README's placements tour runs as written, against a registry with
// the placement second that make run PLACEMENTS=2 adds.
func TestReadmePlacementsTour(t *testing.T) {
	t.Parallel()
	if _, err := exec.LookPath("curl"); err != nil {
		t.Skip("curl is not installed")
	}
	lines, err := readmetour.Lines("placements-tour", nil)
	require.NoError(t, err)
	r := startWithPlacements(t, "second")
	r.create("demo") // as make run does, in default: the first by name
	addr := r.app.HTTPAddr().String()
	for i := range lines {
		lines[i] = strings.ReplaceAll(lines[i], "localhost:8081", addr)
	}
	env := []string{"PATH=" + os.Getenv("PATH"), "TENANTRY_OPERATOR_TOKEN=" + operatorToken}
	outputs, err := readmetour.Run(t.TempDir(), env, lines)
	require.NoError(t, err)
	require.Len(t, outputs, 5)
	require.Contains(t, outputs[0], `"placements/second"`)
	require.Contains(t, outputs[1], `"closed":true`)
	require.Contains(t, outputs[2], "PLACEMENT_CLOSED", "a tenant naming the closed placement is refused")
	require.NotContains(t, outputs[3], `"closed":true`)
	require.NotContains(t, outputs[3], `"code"`)
	require.Contains(t, outputs[4], `"name":"tenants/vandelay"`)
	require.Contains(t, outputs[4], `"placement":"second"`, "the placement with the fewest tenants")
}
