package notes_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	identityv1 "tenantry.dev/gen/tenantry/identity/v1"
	notesv1 "tenantry.dev/gen/tenantry/notes/v1"
	registryv1 "tenantry.dev/gen/tenantry/registry/v1"
	"tenantry.dev/kit/registrytest"
	"tenantry.dev/kit/service"
	"tenantry.dev/kit/tenancy"
	"tenantry.dev/notes"
	"tenantry.dev/platform/grpcerr"
	"tenantry.dev/platform/pgtest"
	"tenantry.dev/platform/readmetour"
	"tenantry.dev/platform/tenantrole"
)

var registryBin, identityBin, grpcurlBin string

func TestMain(m *testing.M) { os.Exit(testMain(m)) }

func testMain(m *testing.M) int {
	dir, err := os.MkdirTemp("", "notes-test-bin-*")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer os.RemoveAll(dir)
	build := exec.Command("go", "build", "-o", dir+string(filepath.Separator),
		"tenantry.dev/tenant-registry/cmd/tenant-registry", "tenantry.dev/identity/cmd/identity",
		"github.com/fullstorydev/grpcurl/cmd/grpcurl")
	if out, err := build.CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "go build: %v\n%s", err, out)
		return 1
	}
	registryBin, identityBin, grpcurlBin = filepath.Join(dir, "tenant-registry"), filepath.Join(dir, "identity"), filepath.Join(dir, "grpcurl")
	return pgtest.Run(m)
}

// system is a real registry and identity, as subprocesses, and the notes
// service in the test process, on one database.
type system struct {
	t        *testing.T
	registry *registrytest.Registry
	identity string // gRPC address
	auth     identityv1.AuthServiceClient
	app      *notes.App
	client   notesv1.NotesServiceClient
	http     string
	db       string
}

// startSystem starts everything; the tenants are created once the notes
// service has registered its component, so they have its tables at once.
func startSystem(t *testing.T, tenants ...string) *system {
	return startSystemAfter(t, nil, tenants...)
}

// startSystemAfter creates the tenants early before the notes service
// registers its component: they get its tables only through a fleet
// migration.
func startSystemAfter(t *testing.T, early []string, tenants ...string) *system {
	t.Helper()
	return startSystemWith(t, func(*notes.Config) {}, early, tenants...)
}

// startSystemWith is startSystemAfter with configure changing the notes
// service's configuration before it starts.
func startSystemWith(t *testing.T, configure func(*notes.Config), early []string, tenants ...string) *system {
	t.Helper()
	s := &system{t: t, db: pgtest.NewDatabase(t)}
	s.registry = registrytest.StartOn(t, registryBin, s.db)
	for _, slug := range early {
		s.registry.Create(slug)
	}
	identity := registrytest.StartProcess(t, "identity", nil, identityBin, "-grpc-addr", "127.0.0.1:0", "-http-addr", "",
		"-database-url", s.db, "-registry-addr", s.registry.Addr, "-operator-token", registrytest.OperatorToken,
		"-service-token", registrytest.ServiceToken, "-key-encryption-key", strings.Repeat("k", 32),
		"-component-token", s.registry.ComponentToken("identity"),
		"-hash-concurrency", "1", "-shutdown-timeout", "1s")
	s.identity = identity.WaitFor(registrytest.ServingGRPC)[1]
	s.auth = identityv1.NewAuthServiceClient(registrytest.Dial(t, s.identity))

	cfg, err := notes.LoadConfig([]string{
		"-grpc-addr", "127.0.0.1:0", "-http-addr", "127.0.0.1:0",
		"-registry-addr", s.registry.Addr, "-identity-addr", s.identity,
		"-component-token", s.registry.ComponentToken("notes"), "-database-url", s.db,
	}, func(string) (string, bool) { return "", false })
	require.NoError(t, err)
	configure(cfg)
	ctx, cancel := context.WithTimeout(context.Background(), registrytest.WaitFor)
	defer cancel()
	s.app, err = notes.New(ctx, cfg, slog.New(slog.NewTextHandler(io.Discard, nil)))
	require.NoError(t, err)
	require.NoError(t, s.app.Listen())
	runCtx, stop := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.app.Run(runCtx) }()
	t.Cleanup(func() { stop(); require.NoError(t, <-done) })
	s.client = notesv1.NewNotesServiceClient(registrytest.Dial(t, s.app.Addr().String()))
	s.http = s.app.HTTPAddr().String()
	for _, slug := range tenants {
		s.registry.Create(slug)
	}
	return s
}

// signUp creates a user in a tenant and returns its access token and id.
func (s *system) signUp(tenant, email string) (token, id string) {
	s.t.Helper()
	ctx := metadata.AppendToOutgoingContext(context.Background(), "x-tenant", tenant)
	_, err := s.auth.SignUp(ctx, &identityv1.SignUpRequest{Email: email, Password: "correct horse battery staple"})
	require.NoError(s.t, err)
	resp, err := s.auth.Login(ctx, &identityv1.LoginRequest{Email: email, Password: "correct horse battery staple"})
	require.NoError(s.t, err)
	return resp.GetAccessToken(), resp.GetUser().GetId()
}

func call(tenant, token string) context.Context {
	md := metadata.Pairs("x-tenant", tenant)
	if token != "" {
		md.Append("authorization", "Bearer "+token)
	}
	return metadata.NewOutgoingContext(context.Background(), md)
}

func requireStatus(t *testing.T, err error, code codes.Code, reason string) {
	t.Helper()
	st, _ := status.FromError(err)
	require.Equal(t, code, st.Code(), "%v", err)
	require.Equal(t, reason, grpcerr.Reason(st), "%v", err)
}

func TestNotesPerUserAndTenant(t *testing.T) {
	t.Parallel()
	s := startSystem(t, "acme", "globex")
	require.Equal(t, []int32{1, 2}, s.app.Registered(), "the service registers its component at start-up")
	bea, _ := s.signUp("acme", "bea@acme.test")
	cal, _ := s.signUp("acme", "cal@acme.test")
	gus, _ := s.signUp("globex", "gus@globex.test")

	created, err := s.client.CreateNote(call("acme", bea), &notesv1.CreateNoteRequest{Note: &notesv1.Note{Title: "Plan", Body: "world domination"}})
	require.NoError(t, err)
	require.Regexp(t, `^notes/\d+$`, created.GetNote().GetName())
	list, err := s.client.ListNotes(call("acme", bea), &notesv1.ListNotesRequest{})
	require.NoError(t, err)
	require.Len(t, list.GetNotes(), 1)
	require.Equal(t, "world domination", list.GetNotes()[0].GetBody())

	for who, ctx := range map[string]context.Context{"another user": call("acme", cal), "another tenant": call("globex", gus)} {
		list, err := s.client.ListNotes(ctx, &notesv1.ListNotesRequest{})
		require.NoError(t, err, who)
		require.Empty(t, list.GetNotes(), who)
	}
	got, err := s.client.GetNote(call("acme", bea), &notesv1.GetNoteRequest{Name: created.GetNote().GetName()})
	require.NoError(t, err)
	require.Equal(t, "world domination", got.GetNote().GetBody())
	_, err = s.client.GetNote(call("acme", cal), &notesv1.GetNoteRequest{Name: created.GetNote().GetName()})
	requireStatus(t, err, codes.NotFound, "NOTE_NOT_FOUND")

	// Refusals, with the reason a client can act on.
	_, err = s.client.ListNotes(call("globex", bea), &notesv1.ListNotesRequest{})
	requireStatus(t, err, codes.Unauthenticated, "ACCESS_TOKEN_WRONG_TENANT")
	_, err = s.client.ListNotes(call("acme", ""), &notesv1.ListNotesRequest{})
	requireStatus(t, err, codes.Unauthenticated, "ACCESS_TOKEN_MISSING")
	_, err = s.client.ListNotes(call("acme", bea[:len(bea)-4]+"AAAA"), &notesv1.ListNotesRequest{})
	requireStatus(t, err, codes.Unauthenticated, "ACCESS_TOKEN_INVALID")
	_, err = s.client.ListNotes(call("nowhere", bea), &notesv1.ListNotesRequest{})
	require.Equal(t, codes.NotFound, status.Code(err), "%v", err)
	_, err = s.client.CreateNote(call("acme", bea), &notesv1.CreateNoteRequest{Note: &notesv1.Note{Body: " "}})
	requireStatus(t, err, codes.InvalidArgument, "BODY_EMPTY")

	// The same over REST, the tenant from the host.
	req, err := http.NewRequest(http.MethodGet, "http://"+s.http+"/v1/notes", nil)
	require.NoError(t, err)
	req.Host = "acme.localhost"
	req.Header.Set("Authorization", "Bearer "+bea)
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode, "%s", body)
	require.Contains(t, string(body), "world domination")
	req.Host = "globex.localhost"
	resp, err = http.DefaultClient.Do(req)
	require.NoError(t, err)
	body, _ = io.ReadAll(resp.Body)
	resp.Body.Close()
	require.Equal(t, http.StatusUnauthorized, resp.StatusCode, "%s", body)
	require.Contains(t, string(body), "ACCESS_TOKEN_WRONG_TENANT")

	_, err = s.client.DeleteNote(call("acme", bea), &notesv1.DeleteNoteRequest{Name: created.GetNote().GetName()})
	require.NoError(t, err)
	_, err = s.client.DeleteNote(call("acme", bea), &notesv1.DeleteNoteRequest{Name: created.GetNote().GetName()})
	requireStatus(t, err, codes.NotFound, "NOTE_NOT_FOUND")
}

// A tenant that existed before the component was registered has neither
// its tables nor its role until a fleet migration gives them: until then
// the service says so, and afterwards it works.
func TestTenantsFromBeforeTheComponentNeedAFleetMigration(t *testing.T) {
	t.Parallel()
	s := startSystemAfter(t, []string{"old"})
	bea, _ := s.signUp("old", "bea@old.test")
	_, err := s.client.ListNotes(call("old", bea), &notesv1.ListNotesRequest{})
	requireStatus(t, err, codes.FailedPrecondition, service.ReasonCredentialRejected)

	comps := registryv1.NewComponentServiceClient(registrytest.Dial(t, s.registry.Addr))
	op, err := comps.MigrateTenants(s.registry.OperatorCtx(), &registryv1.MigrateTenantsRequest{})
	require.NoError(t, err)
	ops := registryv1.NewOperationServiceClient(registrytest.Dial(t, s.registry.Addr))
	registrytest.Eventually(t, "the fleet migration to end", func() bool {
		got, err := ops.GetOperation(s.registry.OperatorCtx(), &registryv1.GetOperationRequest{Name: op.GetOperation().GetName()})
		require.NoError(t, err)
		return got.GetOperation().GetDone()
	})
	_, err = s.client.CreateNote(call("old", bea), &notesv1.CreateNoteRequest{Note: &notesv1.Note{Body: "at last"}})
	require.NoError(t, err)
}

// Whatever SQL a handler runs through the kit, injected or not, runs as the
// notes role of the caller's tenant, and PostgreSQL refuses everything
// outside it: another tenant's schema, identity's tables in the same
// schema, a switch to another role.
func TestInjectedSQLStaysInItsTenant(t *testing.T) {
	t.Parallel()
	s := startSystem(t, "acme", "globex")
	bea, _ := s.signUp("acme", "bea@acme.test") // identity's tables exist in acme's schema now
	gus, _ := s.signUp("globex", "gus@globex.test")
	_, err := s.client.CreateNote(call("globex", gus), &notesv1.CreateNoteRequest{Note: &notesv1.Note{Body: "globex secret"}})
	require.NoError(t, err)
	_ = bea

	var acme tenancy.Tenant
	resp, err := s.registry.Operator.ResolveTenant(s.registry.OperatorCtx(), &registryv1.ResolveTenantRequest{Key: &registryv1.ResolveTenantRequest_Slug{Slug: "acme"}})
	require.NoError(t, err)
	globex, err := s.registry.Operator.ResolveTenant(s.registry.OperatorCtx(), &registryv1.ResolveTenantRequest{Key: &registryv1.ResolveTenantRequest_Slug{Slug: "globex"}})
	require.NoError(t, err)
	acme = tenancy.Tenant{UID: resp.GetTenant().GetUid(), Slug: "acme", Schema: resp.GetTenant().GetSchema(), Placement: resp.GetTenant().GetPlacement(), State: tenancy.Active}
	ctx := service.WithCaller(context.Background(), service.Caller{Tenant: acme})

	var own int
	require.NoError(t, s.app.Kit().InTenant(ctx, func(ctx context.Context, tx pgx.Tx) error {
		return tx.QueryRow(ctx, `SELECT count(*) FROM notes`).Scan(&own)
	}))
	require.Zero(t, own)
	injected := map[string]string{
		"another tenant's notes":       `SELECT body FROM globex.notes`,
		"identity's users, own tenant": `SELECT * FROM users`,
		"identity's users, qualified":  `SELECT * FROM acme.users`,
		"another tenant's role":        `SET ROLE "` + tenantrole.RoleName(globex.GetTenant().GetUid(), "notes") + `"`,
		"the registry":                 `SELECT * FROM tenantry_registry.tenants`,
	}
	for what, sql := range injected {
		err := s.app.Kit().InTenant(ctx, func(ctx context.Context, tx pgx.Tx) error {
			_, err := tx.Exec(ctx, sql)
			return err
		})
		st := grpcerr.Status(err)
		require.Equal(t, codes.PermissionDenied, st.Code(), "%s: %v", what, err)
		require.Equal(t, service.ReasonTenantRoleDenied, grpcerr.Reason(st), what)
	}

	// A statement alone, without BEGIN and COMMIT, runs as the same role.
	require.NoError(t, s.app.Kit().QueryInTenant(ctx, func(rows pgx.Rows) (err error) {
		own, err = pgx.CollectExactlyOneRow(rows, pgx.RowTo[int])
		return err
	}, `SELECT count(*) FROM notes`))
	require.Zero(t, own)
	for what, sql := range injected {
		err := s.app.Kit().QueryInTenant(ctx, func(rows pgx.Rows) error { return nil }, sql)
		st := grpcerr.Status(err)
		require.Equal(t, codes.PermissionDenied, st.Code(), "%s, a statement alone: %v", what, err)
		require.Equal(t, service.ReasonTenantRoleDenied, grpcerr.Reason(st), what)
	}
}

// The README's "Build your product on Tenantry" runs as written, against
// this test's services in place of make run's addresses.
func TestReadmeProductTour(t *testing.T) {
	t.Parallel()
	s := startSystem(t, "demo")
	lines, err := readmetour.Lines("product-tour", func(l string) bool {
		return strings.HasPrefix(l, "grpcurl ") || strings.HasPrefix(l, "curl ")
	})
	require.NoError(t, err)
	env := []string{"PATH=" + filepath.Dir(grpcurlBin) + ":" + os.Getenv("PATH")}
	repl := strings.NewReplacer("localhost:50052", s.identity, "localhost:50053", s.app.Addr().String(),
		"demo.localhost:8083", "demo.localhost:"+portOf(s.http))
	sawNote := false
	for _, line := range lines {
		cmd := exec.Command("bash", "-c", repl.Replace(line))
		cmd.Env = append(registrytest.CleanEnv(), env...)
		out, err := cmd.CombinedOutput()
		require.NoError(t, err, "%s\n%s", line, out)
		if strings.Contains(line, "/Login") {
			var resp struct{ AccessToken string }
			require.NoError(t, json.Unmarshal(out, &resp), "%s", out)
			env = append(env, "ACCESS_TOKEN="+resp.AccessToken)
		}
		sawNote = sawNote || strings.Contains(string(out), "Hello from the README")
	}
	require.True(t, sawNote, "the tour reads back the note it wrote")
}

func portOf(addr string) string { return addr[strings.LastIndex(addr, ":")+1:] }

// The kit's HTTP middleware, for services without gRPC, admits the same
// way: the tenant from X-Tenant or the Host, the token bound to it.
func TestKitHTTPMiddleware(t *testing.T) {
	t.Parallel()
	s := startSystem(t, "acme", "globex")
	bea, beaID := s.signUp("acme", "bea@acme.test")
	srv := httptest.NewServer(s.app.Kit().HTTPMiddleware(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, _ := service.CallerFrom(r.Context())
		fmt.Fprintf(w, "%s %s", c.Tenant.Slug, c.User.Subject)
	})))
	t.Cleanup(srv.Close)
	get := func(host, tenant, token string) (int, string) {
		req, err := http.NewRequest(http.MethodGet, srv.URL, nil)
		require.NoError(t, err)
		req.Host = host
		if tenant != "" {
			req.Header.Set("X-Tenant", tenant)
		}
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		resp, err := http.DefaultClient.Do(req)
		require.NoError(t, err)
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(body)
	}
	code, body := get("acme.localhost", "", bea)
	require.Equal(t, http.StatusOK, code, body)
	require.Equal(t, "acme "+beaID, body)
	code, body = get("example.com", "acme", bea)
	require.Equal(t, http.StatusOK, code, body)
	code, body = get("globex.localhost", "", bea)
	require.Equal(t, http.StatusUnauthorized, code)
	require.Contains(t, body, "ACCESS_TOKEN_WRONG_TENANT")
	code, body = get("acme.localhost", "", "")
	require.Equal(t, http.StatusUnauthorized, code)
	require.Contains(t, body, "ACCESS_TOKEN_MISSING")
	code, body = get("nowhere.localhost", "", bea)
	require.Equal(t, http.StatusNotFound, code, body)
}
