// The notes-node example, end to end: a real tenant-registry and identity
// (built from this workspace) on a fresh database, and the Node.js service
// as a subprocess, all on real sockets. The Node.js service talks to them
// only as any stack would: the registry's REST API, identity's JWKS, and
// PostgreSQL as each tenant's own role.
package notesnode_test

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/url"
	"os/exec"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/stretchr/testify/require"
	"google.golang.org/grpc/metadata"

	identityv1 "tenantry.dev/gen/tenantry/identity/v1"
	registryv1 "tenantry.dev/gen/tenantry/registry/v1"
	"tenantry.dev/kit/registrytest"
	"tenantry.dev/platform/pgtest"
)

const (
	component        = "notes-node"
	componentKey     = "component-key-for-tests-0123456789abcdef"
	keyEncryptionKey = "key-encryption-key-for-tests-0123456789abcdef"
	goodPassword     = "correct horse battery staple"
)

// system is a registry, identity and the notes-node service, sharing one
// database.
type system struct {
	t              *testing.T
	dbURL          string
	registry       *registrytest.Process
	registryGRPC   string
	registryHTTP   string
	tenants        registryv1.TenantServiceClient
	components     registryv1.ComponentServiceClient
	operations     registryv1.OperationServiceClient
	identity       *registrytest.Process
	identityHTTP   string
	auth           identityv1.AuthServiceClient
	componentToken string
	notes          *registrytest.Process
	notesAddr      string
}

// startSystem starts the registry, identity and notes-node, creating the
// tenants named in before once identity runs and before notes-node has
// registered its component.
func startSystem(t *testing.T, before ...string) *system {
	t.Helper()
	s := &system{t: t, dbURL: pgtest.NewDatabase(t)}
	s.registry = registrytest.StartProcess(t, "tenant-registry", nil, registryBin,
		"-grpc-addr", "127.0.0.1:0",
		"-http-addr", "127.0.0.1:0",
		"-database-url", s.dbURL,
		"-operator-token", registrytest.OperatorToken,
		"-service-token", registrytest.ServiceToken,
		"-component-key", componentKey,
		"-reconcile-interval", "1h",
		"-shutdown-timeout", "1s",
	)
	s.registryGRPC = s.registry.WaitFor(registrytest.ServingGRPC)[1]
	s.registryHTTP = s.registry.WaitFor(registrytest.ServingHTTP)[1]
	conn := registrytest.Dial(t, s.registryGRPC)
	s.tenants = registryv1.NewTenantServiceClient(conn)
	s.components = registryv1.NewComponentServiceClient(conn)
	s.operations = registryv1.NewOperationServiceClient(conn)

	cred, err := s.components.GetComponentCredential(s.operatorCtx(), &registryv1.GetComponentCredentialRequest{Name: "components/" + component})
	require.NoError(t, err)
	s.componentToken = cred.GetToken()
	require.True(t, strings.HasPrefix(s.componentToken, "tnc_"+component+"_"), "component token %q", s.componentToken)
	idCred, err := s.components.GetComponentCredential(s.operatorCtx(), &registryv1.GetComponentCredentialRequest{Name: "components/identity"})
	require.NoError(t, err)

	s.identity = registrytest.StartProcess(t, "identity", nil, identityBin,
		"-grpc-addr", "127.0.0.1:0",
		"-http-addr", "127.0.0.1:0",
		"-database-url", s.dbURL,
		"-registry-addr", s.registryGRPC,
		"-operator-token", registrytest.OperatorToken,
		"-service-token", registrytest.ServiceToken,
		"-key-encryption-key", keyEncryptionKey,
		"-component-token", idCred.GetToken(),
		"-hash-concurrency", "1",
		"-shutdown-timeout", "1s",
	)
	identityGRPC := s.identity.WaitFor(registrytest.ServingGRPC)[1]
	s.identityHTTP = s.identity.WaitFor(registrytest.ServingHTTP)[1]
	s.auth = identityv1.NewAuthServiceClient(registrytest.Dial(t, identityGRPC))
	// Another component with a table of its own in every schema, as the Go
	// example (component notes, table notes) has: both live side by side.
	_, err = s.components.RegisterComponent(s.operatorCtx(), &registryv1.RegisterComponentRequest{Component: &registryv1.Component{
		Name: "components/notes",
		Migrations: []*registryv1.Migration{{Version: 1, Name: "create_notes",
			Sql: "CREATE TABLE notes (id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY, owner uuid NOT NULL, body text NOT NULL)"}},
	}})
	require.NoError(t, err)
	for _, slug := range before {
		s.createTenant(slug)
	}

	s.notes = s.startNotes(s.componentToken)
	s.notesAddr = s.notes.WaitFor(servingNode)[1]
	return s
}

// startNotes starts the Node.js service with a component token.
func (s *system) startNotes(token string) *registrytest.Process {
	s.t.Helper()
	node, err := exec.LookPath("node")
	require.NoError(s.t, err)
	return registrytest.StartProcess(s.t, "notes-node", []string{"TENANTRY_COMPONENT_TOKEN=" + token}, node, "src/server.js",
		"--http-addr", "127.0.0.1:0",
		"--registry-url", "http://"+s.registryHTTP,
		"--identity-url", "http://"+s.identityHTTP,
		"--database-url", s.dbURL,
		"--tenant-cache-ttl", "300ms",
		"--log-level", "debug",
	)
}

// operatorCtx is the context of one call to the registry as its operator.
func (s *system) operatorCtx() context.Context {
	return metadata.AppendToOutgoingContext(callCtx(s.t), "authorization", "Bearer "+registrytest.OperatorToken)
}

// createTenant creates an active tenant through the registry.
func (s *system) createTenant(slug string) *registryv1.Tenant {
	s.t.Helper()
	resp, err := s.tenants.CreateTenant(s.operatorCtx(), &registryv1.CreateTenantRequest{
		TenantId: slug,
		Tenant:   &registryv1.Tenant{DisplayName: "Tenant " + slug},
	})
	require.NoError(s.t, err)
	return resp.GetTenant()
}

// migrateTenants runs a fleet migration of the notes-node component and
// waits for it to end without failures.
func (s *system) migrateTenants() {
	s.t.Helper()
	resp, err := s.components.MigrateTenants(s.operatorCtx(), &registryv1.MigrateTenantsRequest{Components: []string{"components/" + component}})
	require.NoError(s.t, err)
	op := resp.GetOperation()
	registrytest.Eventually(s.t, "the fleet migration to end", func() bool {
		got, err := s.operations.WaitOperation(s.operatorCtx(), &registryv1.WaitOperationRequest{Name: op.GetName()})
		require.NoError(s.t, err)
		op = got.GetOperation()
		return op.GetDone()
	})
	require.Nil(s.t, op.GetError())
	require.Zero(s.t, op.GetMetadata().GetFailed(), "%v", op.GetResult())
}

// user is someone logged in to a tenant through identity.
type user struct {
	id, token string
}

// signUp creates an account in a tenant through identity and logs it in.
func (s *system) signUp(tenant, email string) user {
	s.t.Helper()
	ctx := metadata.AppendToOutgoingContext(callCtx(s.t), "x-tenant", tenant)
	_, err := s.auth.SignUp(ctx, &identityv1.SignUpRequest{Email: email, Password: goodPassword})
	require.NoError(s.t, err)
	resp, err := s.auth.Login(ctx, &identityv1.LoginRequest{Email: email, Password: goodPassword})
	require.NoError(s.t, err)
	return user{id: resp.GetUser().GetId(), token: resp.GetAccessToken()}
}

// reply is an answer of the notes service.
type reply struct {
	status int
	header http.Header
	body   map[string]any
}

// reason is the stable reason of an error reply.
func (r reply) reason() string { s, _ := r.body["reason"].(string); return s }

// notesOf returns the notes of a ListNotes reply.
func (r reply) notesOf() []map[string]any {
	var notes []map[string]any
	list, _ := r.body["notes"].([]any)
	for _, n := range list {
		notes = append(notes, n.(map[string]any))
	}
	return notes
}

// call sends a request to the notes service for host (the tenant), with
// an access token unless it is empty, and extra headers as name, value.
func (s *system) call(method, host, path, token, body string, headers ...string) reply {
	s.t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequestWithContext(callCtx(s.t), method, "http://"+s.notesAddr+path, rd)
	require.NoError(s.t, err)
	req.Host = host
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Add(headers[i], headers[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	require.NoError(s.t, err)
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	require.NoError(s.t, err)
	r := reply{status: resp.StatusCode, header: resp.Header}
	require.NoError(s.t, json.Unmarshal(raw, &r.body), "body: %s", raw)
	require.Equal(s.t, "application/json; charset=utf-8", resp.Header.Get("Content-Type"))
	return r
}

func TestNotesNode(t *testing.T) {
	requireNode(t)
	s := startSystem(t, "early")
	// Tenants created once the component is registered get its table and
	// their role for it at once.
	alpha, bravo := s.createTenant("alpha"), s.createTenant("bravo")
	ann := s.signUp("alpha", "ann@example.com")
	cat := s.signUp("alpha", "cat@example.com")
	bob := s.signUp("bravo", "bob@example.com")
	eve := s.signUp("early", "eve@example.com")

	t.Run("health says serving", func(t *testing.T) {
		r := s.call("GET", "127.0.0.1", "/healthz", "", "")
		require.Equal(t, http.StatusOK, r.status)
		require.Equal(t, "SERVING", r.body["status"])
	})

	t.Run("a user creates notes in her tenant and lists them", func(t *testing.T) {
		first := s.call("POST", "alpha.localhost", "/v1/notes", ann.token, `{"body":"buy milk"}`)
		require.Equal(t, http.StatusCreated, first.status, "%v", first.body)
		require.Equal(t, "buy milk", first.body["body"])
		require.Equal(t, ann.id, first.body["owner"])
		require.NotEmpty(t, first.body["id"])
		require.NotEmpty(t, first.body["createdAt"])
		second := s.call("POST", "alpha.localhost:8090", "/v1/notes", ann.token, `{"body":"call Bea; it's \"urgent\"' OR 1=1 --"}`)
		require.Equal(t, http.StatusCreated, second.status, "%v", second.body)

		list := s.call("GET", "alpha.localhost", "/v1/notes", ann.token, "")
		require.Equal(t, http.StatusOK, list.status, "%v", list.body)
		notes := list.notesOf()
		require.Len(t, notes, 2)
		require.Equal(t, `call Bea; it's "urgent"' OR 1=1 --`, notes[0]["body"], "newest first, stored as given")
		require.Equal(t, "buy milk", notes[1]["body"])
		require.Empty(t, list.body["nextPageToken"])
	})

	t.Run("pages follow one another", func(t *testing.T) {
		page1 := s.call("GET", "alpha.localhost", "/v1/notes?pageSize=1", ann.token, "")
		require.Equal(t, http.StatusOK, page1.status)
		require.Len(t, page1.notesOf(), 1)
		next, _ := page1.body["nextPageToken"].(string)
		require.NotEmpty(t, next)
		page2 := s.call("GET", "alpha.localhost", "/v1/notes?pageSize=1&pageToken="+url.QueryEscape(next), ann.token, "")
		require.Equal(t, http.StatusOK, page2.status)
		require.Len(t, page2.notesOf(), 1)
		require.Equal(t, "buy milk", page2.notesOf()[0]["body"])

		bad := s.call("GET", "alpha.localhost", "/v1/notes?pageToken=abc", ann.token, "")
		require.Equal(t, http.StatusBadRequest, bad.status)
		require.Equal(t, "PAGE_TOKEN_INVALID", bad.reason())
	})

	t.Run("another user of the same tenant sees none of them", func(t *testing.T) {
		list := s.call("GET", "alpha.localhost", "/v1/notes", cat.token, "")
		require.Equal(t, http.StatusOK, list.status)
		require.Empty(t, list.notesOf())
	})

	t.Run("the other tenant's user sees none of them", func(t *testing.T) {
		list := s.call("GET", "bravo.localhost", "/v1/notes", bob.token, "")
		require.Equal(t, http.StatusOK, list.status, "%v", list.body)
		require.Empty(t, list.notesOf())
		created := s.call("POST", "bravo.localhost", "/v1/notes", bob.token, `{"body":"bravo's secret"}`)
		require.Equal(t, http.StatusCreated, created.status)
		require.Len(t, s.call("GET", "alpha.localhost", "/v1/notes", ann.token, "").notesOf(), 2)
	})

	t.Run("x-tenant names the tenant when the host does not", func(t *testing.T) {
		list := s.call("GET", "127.0.0.1", "/v1/notes", ann.token, "", "x-tenant", "alpha")
		require.Equal(t, http.StatusOK, list.status, "%v", list.body)
		require.Len(t, list.notesOf(), 2)

		twice := s.call("GET", "127.0.0.1", "/v1/notes", ann.token, "", "x-tenant", "alpha", "x-tenant", "bravo")
		require.Equal(t, http.StatusBadRequest, twice.status)
		require.Equal(t, "METADATA_REPEATED", twice.reason())
	})

	t.Run("a token of another tenant is refused", func(t *testing.T) {
		for _, r := range []reply{
			s.call("GET", "bravo.localhost", "/v1/notes", ann.token, ""),
			s.call("POST", "bravo.localhost", "/v1/notes", ann.token, `{"body":"planted"}`),
			s.call("GET", "127.0.0.1", "/v1/notes", ann.token, "", "x-tenant", "bravo"),
		} {
			require.Equal(t, http.StatusUnauthorized, r.status)
			require.Equal(t, "ACCESS_TOKEN_WRONG_TENANT", r.reason())
			require.Equal(t, "UNAUTHENTICATED", r.body["code"])
			require.NotEmpty(t, r.body["message"])
			require.Equal(t, "Bearer", r.header.Get("WWW-Authenticate"))
		}
		require.Len(t, s.call("GET", "bravo.localhost", "/v1/notes", bob.token, "").notesOf(), 1, "nothing planted")
	})

	t.Run("a tampered token is refused", func(t *testing.T) {
		parts := strings.Split(ann.token, ".")
		require.Len(t, parts, 3)
		payload, err := base64.RawURLEncoding.DecodeString(parts[1])
		require.NoError(t, err)
		var claims map[string]any
		require.NoError(t, json.Unmarshal(payload, &claims))
		claims["sub"] = cat.id // ann tries to read cat's notes
		payload, err = json.Marshal(claims)
		require.NoError(t, err)
		forged := parts[0] + "." + base64.RawURLEncoding.EncodeToString(payload) + "." + parts[2]

		for name, token := range map[string]string{
			"claims changed":    forged,
			"signature removed": parts[0] + "." + parts[1] + ".",
			"not a JWT":         "not-a-token",
		} {
			r := s.call("GET", "alpha.localhost", "/v1/notes", token, "")
			require.Equal(t, http.StatusUnauthorized, r.status, name)
			require.Equal(t, "ACCESS_TOKEN_INVALID", r.reason(), name)
		}
	})

	t.Run("no token is refused", func(t *testing.T) {
		r := s.call("GET", "alpha.localhost", "/v1/notes", "", "")
		require.Equal(t, http.StatusUnauthorized, r.status)
		require.Equal(t, "MISSING_BEARER_TOKEN", r.reason())
		r = s.call("GET", "alpha.localhost", "/v1/notes", "", "", "Authorization", "Basic YWxhZGRpbjpvcGVuc2VzYW1l")
		require.Equal(t, http.StatusUnauthorized, r.status)
		require.Equal(t, "MISSING_BEARER_TOKEN", r.reason())
	})

	t.Run("a host that names no tenant is not found", func(t *testing.T) {
		for range 2 { // the second answer comes from the negative cache
			r := s.call("GET", "nobody.localhost", "/v1/notes", ann.token, "")
			require.Equal(t, http.StatusNotFound, r.status)
			require.Equal(t, "TENANT_NOT_FOUND", r.reason())
		}
		r := s.call("GET", "127.0.0.1", "/v1/notes", ann.token, "", "x-tenant", "Robert'); DROP TABLE notes;--")
		require.Equal(t, http.StatusBadRequest, r.status)
		require.Equal(t, "SLUG_INVALID", r.reason())
	})

	t.Run("bad input is refused with its reason", func(t *testing.T) {
		cases := []struct {
			name, body string
			status     int
			reason     string
		}{
			{"no body field", `{}`, http.StatusBadRequest, "NOTE_BODY_REQUIRED"},
			{"an empty body", `{"body":"  "}`, http.StatusBadRequest, "NOTE_BODY_EMPTY"},
			{"a body that is not text", `{"body":42}`, http.StatusBadRequest, "NOTE_BODY_REQUIRED"},
			{"a NUL character", `{"body":"a\u0000b"}`, http.StatusBadRequest, "NOTE_BODY_INVALID"},
			{"not JSON", `body=hello`, http.StatusBadRequest, "REQUEST_MALFORMED"},
			{"an array", `[1,2]`, http.StatusBadRequest, "REQUEST_MALFORMED"},
			{"a body too long", `{"body":"` + strings.Repeat("x", 10_001) + `"}`, http.StatusBadRequest, "NOTE_BODY_TOO_LONG"},
			{"a request too large", `{"body":"` + strings.Repeat("x", 70_000) + `"}`, http.StatusRequestEntityTooLarge, "REQUEST_TOO_LARGE"},
		}
		for _, c := range cases {
			r := s.call("POST", "alpha.localhost", "/v1/notes", ann.token, c.body)
			require.Equal(t, c.status, r.status, c.name)
			require.Equal(t, c.reason, r.reason(), c.name)
		}
		r := s.call("DELETE", "alpha.localhost", "/v1/notes", ann.token, "")
		require.Equal(t, http.StatusMethodNotAllowed, r.status)
		require.Equal(t, "GET, POST", r.header.Get("Allow"))
		r = s.call("GET", "alpha.localhost", "/v1/other", ann.token, "")
		require.Equal(t, http.StatusNotFound, r.status)
		require.Equal(t, "ROUTE_NOT_FOUND", r.reason())
	})

	t.Run("a suspended tenant is refused until resumed", func(t *testing.T) {
		_, err := s.tenants.SuspendTenant(s.operatorCtx(), &registryv1.SuspendTenantRequest{Name: "tenants/bravo"})
		require.NoError(t, err)
		registrytest.Eventually(t, "bravo to be refused as suspended", func() bool {
			r := s.call("GET", "bravo.localhost", "/v1/notes", bob.token, "")
			return r.status == http.StatusBadRequest && r.reason() == "TENANT_SUSPENDED"
		})
		_, err = s.tenants.ResumeTenant(s.operatorCtx(), &registryv1.ResumeTenantRequest{Name: "tenants/bravo"})
		require.NoError(t, err)
		registrytest.Eventually(t, "bravo to be served again", func() bool {
			return s.call("GET", "bravo.localhost", "/v1/notes", bob.token, "").status == http.StatusOK
		})
	})

	t.Run("a tenant created before the component is served once the fleet is migrated", func(t *testing.T) {
		// Its schema has neither the table nor the role yet: an outage to
		// retry, not an error.
		r := s.call("GET", "early.localhost", "/v1/notes", eve.token, "")
		require.Equal(t, http.StatusServiceUnavailable, r.status, "%v", r.body)
		require.Contains(t, []string{"TENANT_ROLE_UNAVAILABLE", "TENANT_SCHEMA_NOT_READY"}, r.reason())
		s.migrateTenants()
		r = s.call("POST", "early.localhost", "/v1/notes", eve.token, `{"body":"late but here"}`)
		require.Equal(t, http.StatusCreated, r.status, "%v", r.body)
		require.Len(t, s.call("GET", "early.localhost", "/v1/notes", eve.token, "").notesOf(), 1)
	})

	t.Run("the tenant role reaches its own table and nothing else", func(t *testing.T) {
		ctx := callCtx(t)
		conn, err := pgx.Connect(ctx, roleURL(t, s.dbURL, roleName(alpha.GetUid()), rolePassword(s.componentToken, alpha.GetUid())))
		require.NoError(t, err, "log in as alpha's notes-node role with the password derived from the component token")
		defer conn.Close(ctx)

		var who, schema string
		require.NoError(t, conn.QueryRow(ctx, "SELECT current_user, current_schema()").Scan(&who, &schema))
		require.Equal(t, roleName(alpha.GetUid()), who)
		require.Equal(t, alpha.GetSchema(), schema)
		var n int
		require.NoError(t, conn.QueryRow(ctx, "SELECT count(*) FROM node_notes").Scan(&n))
		require.Equal(t, 2, n, "ann's two notes")

		probes := map[string]string{
			"bravo's notes":                   "SELECT * FROM " + pgx.Identifier{bravo.GetSchema(), "node_notes"}.Sanitize(),
			"identity's users, same schema":   "SELECT * FROM users",
			"another component's notes table": "SELECT * FROM notes",
			"bravo's role":                    "SET ROLE " + pgx.Identifier{roleName(bravo.GetUid())}.Sanitize(),
		}
		for name, sql := range probes {
			_, err := conn.Exec(ctx, sql)
			var pgErr *pgconn.PgError
			require.True(t, errors.As(err, &pgErr), "%s: %v", name, err)
			require.Equal(t, "42501", pgErr.Code, "%s: insufficient_privilege, got %s", name, pgErr.Message)
		}

		// The password is checked: bravo's password does not open alpha's role.
		_, err = pgx.Connect(ctx, roleURL(t, s.dbURL, roleName(alpha.GetUid()), rolePassword(s.componentToken, bravo.GetUid())))
		var pgErr *pgconn.PgError
		require.True(t, errors.As(err, &pgErr), "%v", err)
		require.Equal(t, "28P01", pgErr.Code, "invalid_password")
	})

	t.Run("a known tenant is still served while the registry is down, an unknown host is unavailable", func(t *testing.T) {
		require.Equal(t, http.StatusOK, s.call("GET", "alpha.localhost", "/v1/notes", ann.token, "").status)
		s.registry.Kill()
		r := s.call("GET", "alpha.localhost", "/v1/notes", ann.token, "")
		require.Equal(t, http.StatusOK, r.status, "%v", r.body)
		r = s.call("GET", "charlie.localhost", "/v1/notes", ann.token, "")
		require.Equal(t, http.StatusServiceUnavailable, r.status)
		require.Equal(t, "TENANT_REGISTRY_UNAVAILABLE", r.reason())
		require.Equal(t, "1", r.header.Get("Retry-After"))
	})

	t.Run("SIGTERM stops the service cleanly", func(t *testing.T) {
		s.notes.Stop()
		require.Equal(t, 0, s.notes.ExitCode())
		require.Contains(t, s.notes.Logs.String(), `"msg":"stopped"`)
		require.NotContains(t, s.notes.Logs.String(), s.componentToken, "the credential never reaches the log")
		require.NotContains(t, s.notes.Logs.String(), ann.token, "nor do access tokens")
	})
}

// TestNotesNodeRefusesAForgedCredential: a service whose component token
// the registry does not know stops at start-up with a clear message.
func TestNotesNodeRefusesAForgedCredential(t *testing.T) {
	requireNode(t)
	s := startSystem(t)
	forged := s.startNotes("tnc_" + component + "_" + base64.RawURLEncoding.EncodeToString(make([]byte, 32)))
	require.Equal(t, 1, forged.ExitCode())
	require.Contains(t, forged.Logs.String(), "cannot register the component with the registry")
	require.Contains(t, forged.Logs.String(), "HTTP 401")
}

// TestNodeUnitTests runs the Node.js service's own unit tests (node --test).
func TestNodeUnitTests(t *testing.T) {
	requireNode(t)
	cmd := exec.Command("node", "--test", "test/")
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	require.NoError(t, cmd.Run(), "node --test:\n%s", out.String())
}

// roleName and rolePassword are the tenant role contract, written out here
// from its description (and not taken from either implementation), so
// that the test checks the registry and the Node.js service against it.
func roleName(uid string) string {
	return "t_" + strings.ReplaceAll(uid, "-", "") + "_" + component
}

func rolePassword(componentToken, uid string) string {
	mac := hmac.New(sha256.New, []byte(componentToken))
	mac.Write([]byte("tenantry-db-password/v1:" + uid))
	return base64.RawURLEncoding.EncodeToString(mac.Sum(nil))
}

// roleURL is databaseURL with another user and password.
func roleURL(t *testing.T, databaseURL, user, password string) string {
	t.Helper()
	u, err := url.Parse(databaseURL)
	require.NoError(t, err)
	u.User = url.UserPassword(user, password)
	return u.String()
}
