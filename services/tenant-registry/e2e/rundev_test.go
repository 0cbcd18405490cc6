package e2e

import (
	"encoding/json"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"tenantry.dev/platform/pgcluster"
	"tenantry.dev/platform/pgtest"
)

// createTenantCommand is the CreateTenant command the banner and the README
// show, for the gRPC address addr.
func createTenantCommand(addr string) string {
	return `grpcurl -plaintext -H "authorization: Bearer $TENANTRY_OPERATOR_TOKEN" ` +
		`-d '{"tenant_id":"acme","tenant":{"display_name":"Acme"}}' ` + addr +
		` tenantry.registry.v1.TenantService/CreateTenant`
}

// annCredentials is the request body of the banner's SignUp and Login.
const annCredentials = `'{"email":"ann@example.com","password":"correct horse battery staple"}'`

// signUpCommand, loginCommand, accessTokenLine and getCurrentUserCommand
// are the identity commands the banner and the README show, in the tenant
// demo, for identity's gRPC address addr.
func signUpCommand(addr string) string {
	return `grpcurl -plaintext -H 'x-tenant: demo' -d ` + annCredentials + ` ` + addr +
		` tenantry.identity.v1.AuthService/SignUp`
}

func loginCommand(addr string) string {
	return `grpcurl -plaintext -H 'x-tenant: demo' -d ` + annCredentials + ` ` + addr +
		` tenantry.identity.v1.AuthService/Login`
}

func accessTokenLine(addr string) string {
	return `ACCESS_TOKEN=$(` + loginCommand(addr) + ` | sed -n 's/.*"accessToken": "\(.*\)".*/\1/p')`
}

func getCurrentUserCommand(addr string) string {
	return `grpcurl -plaintext -H 'x-tenant: demo' -H "authorization: Bearer $ACCESS_TOKEN" ` + addr +
		` tenantry.identity.v1.AuthService/GetCurrentUser`
}

func TestRunDevWithDatabaseURL(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binaries and runs make run's script")
	}
	t.Parallel()
	root := repoRoot(t)
	binDir := buildBinaries(t, root)
	devDir := t.TempDir()
	addr := "localhost:" + strconv.Itoa(freePort(t))
	identityAddr := "localhost:" + strconv.Itoa(freePort(t))
	// PostgreSQL trusts local connections, so a password in the URL is
	// accepted and ignored: it shows that the banner hides it.
	databaseURL := withPassword(t, pgtest.NewDatabase(t), "not-to-be-printed")

	run := startRunDev(t, root, binDir,
		"DATABASE_URL="+databaseURL,
		"TENANTRY_DEV_DIR="+devDir,
		"TENANTRY_REGISTRY_GRPC_ADDR="+addr,
		"TENANTRY_IDENTITY_GRPC_ADDR="+identityAddr,
		"TENANTRY_NOTES_GRPC_ADDR=localhost:"+strconv.Itoa(freePort(t)),
		// No REST: parallel runs would share its fixed default ports.
		"TENANTRY_REGISTRY_HTTP_ADDR=",
		"TENANTRY_IDENTITY_HTTP_ADDR=",
		"TENANTRY_NOTES_HTTP_ADDR=",
	)
	registryPID := run.servicePID(t, "tenant-registry")
	identityPID := run.servicePID(t, "identity")
	notesPID := run.servicePID(t, "notes")

	t.Run("the banner shows the database without its password", func(t *testing.T) {
		banner := strings.Join(run.banner, "\n")
		require.NotContains(t, banner, "not-to-be-printed")
		require.Contains(t, banner, withPassword(t, databaseURL, ""))
	})
	t.Run("the tokens are generated once and kept private in TENANTRY_DEV_DIR", func(t *testing.T) {
		requireKeptTokens(t, run, devDir)
	})
	walkThroughBanner(t, run, addr)
	walkThroughIdentity(t, run, identityAddr)

	t.Run("Ctrl-C stops identity and the registry and exits 0", func(t *testing.T) {
		run.interrupt(t)
		requireGone(t, notesPID, "notes")
		requireGone(t, identityPID, "identity")
		requireGone(t, registryPID, "tenant-registry")
	})
}

func TestRunDevWithPrivateCluster(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binaries and runs make run's script with its own PostgreSQL")
	}
	t.Parallel()
	root := repoRoot(t)
	binDir := buildBinaries(t, root)
	// The server runs as the postgres OS user under root, which cannot enter
	// os.MkdirTemp's directories.
	devDir, err := pgcluster.MkdirTemp("", "run-dev-test-*")
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, os.RemoveAll(devDir)) })
	pgPort := freePort(t)
	addr := "localhost:" + strconv.Itoa(freePort(t))
	identityAddr := "localhost:" + strconv.Itoa(freePort(t))
	env := []string{
		"TENANTRY_DEV_DIR=" + devDir,
		"TENANTRY_DEV_PG_PORT=" + strconv.Itoa(pgPort),
		"TENANTRY_REGISTRY_GRPC_ADDR=" + addr,
		"TENANTRY_IDENTITY_GRPC_ADDR=" + identityAddr,
		"TENANTRY_NOTES_GRPC_ADDR=localhost:" + strconv.Itoa(freePort(t)),
		// No REST: parallel runs would share its fixed default ports.
		"TENANTRY_REGISTRY_HTTP_ADDR=",
		"TENANTRY_IDENTITY_HTTP_ADDR=",
		"TENANTRY_NOTES_HTTP_ADDR=",
	}

	first := startRunDev(t, root, binDir, env...)
	t.Run("the first run starts a cluster in TENANTRY_DEV_DIR on TENANTRY_DEV_PG_PORT", func(t *testing.T) {
		banner := strings.Join(first.banner, "\n")
		require.Contains(t, banner, fmt.Sprintf("postgres://postgres@127.0.0.1:%d/tenantry?sslmode=disable", pgPort))
		require.Contains(t, banner, filepath.Join(devDir, "postgres"))
	})
	t.Run("the tokens are generated once and kept private in TENANTRY_DEV_DIR", func(t *testing.T) {
		requireKeptTokens(t, first, devDir)
	})
	walkThroughBanner(t, first, addr)
	walkThroughIdentity(t, first, identityAddr)
	t.Run("Ctrl-C stops identity, the registry, then PostgreSQL, and exits 0", func(t *testing.T) {
		stopAndRequireGone(t, first, devDir)
	})
	keptAfterFirst, err := os.ReadFile(filepath.Join(devDir, "tokens.env"))
	require.NoError(t, err)

	second := startRunDev(t, root, binDir, env...)
	t.Run("a second run reuses the tokens and the key-encryption key", func(t *testing.T) {
		for _, name := range []string{"TENANTRY_OPERATOR_TOKEN", "TENANTRY_SERVICE_TOKEN"} {
			require.Equal(t, first.exportedValue(t, name), second.exportedValue(t, name), name)
		}
		kept, err := os.ReadFile(filepath.Join(devDir, "tokens.env"))
		require.NoError(t, err)
		require.Equal(t, string(keptAfterFirst), string(kept))
	})
	t.Run("a second run reuses the cluster: the tenant is still there", func(t *testing.T) {
		requireResolvesAcme(t, second)
	})
	t.Run("a second run finds demo: SignUp again answers OK, as for any address", func(t *testing.T) {
		requireSignUpAnswers(t, second, identityAddr)
	})
	t.Run("a second run finds demo: ann still logs in", func(t *testing.T) {
		requireLoggedInAsAnn(t, second, identityAddr)
	})
	t.Run("Ctrl-C stops the second run as cleanly", func(t *testing.T) {
		stopAndRequireGone(t, second, devDir)
	})
}

// walkThroughBanner runs the banner's commands in the order a newcomer does.
func walkThroughBanner(t *testing.T, run *devRun, addr string) {
	t.Run("the banner shows the CreateTenant command of the README", func(t *testing.T) {
		require.Contains(t, run.commands, createTenantCommand(addr))
	})
	t.Run("grpcurl list shows the tenant service and health", func(t *testing.T) {
		out, errOut, code := run.shell(t, run.command(t, " list"))
		require.Zero(t, code, errOut)
		require.Contains(t, strings.Fields(out), "tenantry.registry.v1.TenantService")
		require.Contains(t, strings.Fields(out), "grpc.health.v1.Health")
	})
	t.Run("grpcurl describe shows the tenant service's methods", func(t *testing.T) {
		out, errOut, code := run.shell(t, run.command(t, " describe tenantry.registry.v1.TenantService"))
		require.Zero(t, code, errOut)
		require.Contains(t, out, "rpc CreateTenant")
		require.Contains(t, out, "rpc ResolveTenant")
	})
	t.Run("CreateTenant as printed creates an ACTIVE tenant", func(t *testing.T) {
		out, errOut, code := run.shell(t, createTenantCommand(addr))
		require.Zero(t, code, errOut)
		var resp struct {
			Tenant struct{ Name, Slug, DisplayName, State string }
		}
		require.NoError(t, json.Unmarshal([]byte(out), &resp), out)
		require.Equal(t, "tenants/acme", resp.Tenant.Name)
		require.Equal(t, "Acme", resp.Tenant.DisplayName)
		require.Equal(t, "STATE_ACTIVE", resp.Tenant.State)
	})
	t.Run("ResolveTenant as printed finds the tenant by acme.localhost", func(t *testing.T) {
		requireResolvesAcme(t, run)
	})
	t.Run("CreateTenant without the token is Unauthenticated", func(t *testing.T) {
		withToken := createTenantCommand(addr)
		anonymous := strings.Replace(withToken, `-H "authorization: Bearer $TENANTRY_OPERATOR_TOKEN" `, "", 1)
		require.NotEqual(t, withToken, anonymous)
		_, errOut, code := run.shell(t, anonymous)
		require.NotZero(t, code)
		require.Contains(t, errOut, "Code: Unauthenticated")
	})
}

// walkThroughIdentity runs the banner's identity commands in the order a
// newcomer does, in the tenant demo that run-dev.sh creates.
func walkThroughIdentity(t *testing.T, run *devRun, addr string) {
	t.Run("the banner shows identity, which is healthy", func(t *testing.T) {
		pid := run.servicePID(t, "identity")
		require.True(t, running(pid, "identity"), "the banner's identity PID %d runs no identity", pid)
		require.Contains(t, strings.Join(run.banner, "\n"), addr)
		out, errOut, code := run.shell(t, "grpcurl -plaintext "+addr+" grpc.health.v1.Health/Check")
		require.Zero(t, code, errOut)
		require.Contains(t, out, `"SERVING"`)
	})
	t.Run("grpcurl list on identity shows its three services", func(t *testing.T) {
		out, errOut, code := run.shell(t, "grpcurl -plaintext "+addr+" list")
		require.Zero(t, code, errOut)
		for _, service := range []string{"AuthService", "UserService", "TokenService"} {
			require.Contains(t, strings.Fields(out), "tenantry.identity.v1."+service)
		}
	})
	t.Run("the banner shows the identity commands of the README", func(t *testing.T) {
		for _, line := range []string{signUpCommand(addr), loginCommand(addr), accessTokenLine(addr), getCurrentUserCommand(addr)} {
			require.Contains(t, run.commands, line)
		}
	})
	t.Run("SignUp as printed signs ann up in demo", func(t *testing.T) {
		requireSignUpAnswers(t, run, addr)
	})
	t.Run("the verification email for ann, with its link, is in identity's log", func(t *testing.T) {
		run.requireLogLine(t, "mail not sent", "tenant=demo", "kind=verification", "ann@example.com", "/verify-email?token=")
	})
	t.Run("Login, ACCESS_TOKEN and GetCurrentUser as printed return ann", func(t *testing.T) {
		requireLoggedInAsAnn(t, run, addr)
	})
}

// requireSignUpAnswers runs the banner's SignUp command and requires it to
// succeed. It answers the same whether the address is new or taken, so as
// not to tell who has an account.
func requireSignUpAnswers(t *testing.T, run *devRun, addr string) {
	t.Helper()
	out, errOut, code := run.shell(t, run.command(t, addr, "/SignUp"))
	require.Zero(t, code, errOut)
	var resp struct{ Message string }
	require.NoError(t, json.Unmarshal([]byte(out), &resp), out)
	require.NotEmpty(t, resp.Message, out)
}

// requireLoggedInAsAnn runs the banner's Login, ACCESS_TOKEN and
// GetCurrentUser lines as one pasted block and requires both calls to
// return the user ann@example.com: the second one authenticated by the
// access token that the ACCESS_TOKEN line took from Login's output.
func requireLoggedInAsAnn(t *testing.T, run *devRun, addr string) {
	t.Helper()
	block := strings.Join([]string{
		run.command(t, addr, "/Login"),
		run.assignment(t, "ACCESS_TOKEN"),
		run.command(t, addr, "/GetCurrentUser"),
	}, "\n")
	out, errOut, code := run.shell(t, block)
	require.Zero(t, code, errOut)
	type user struct{ Email, State string }
	var login struct {
		AccessToken string
		User        user
	}
	var current struct{ User user }
	dec := json.NewDecoder(strings.NewReader(out))
	require.NoError(t, dec.Decode(&login), out)
	require.NoError(t, dec.Decode(&current), out)
	require.False(t, dec.More(), "more output than Login's and GetCurrentUser's:\n%s", out)
	require.NotEmpty(t, login.AccessToken)
	require.Equal(t, "ann@example.com", login.User.Email)
	require.Equal(t, user{Email: "ann@example.com", State: "STATE_ACTIVE"}, current.User)
}

// requireResolvesAcme runs the banner's ResolveTenant command and requires
// it to find the tenant acme by its subdomain.
func requireResolvesAcme(t *testing.T, run *devRun) {
	t.Helper()
	out, errOut, code := run.shell(t, run.command(t, "acme.localhost", "/ResolveTenant"))
	require.Zero(t, code, errOut)
	var resp struct {
		Tenant struct{ Slug, State string }
		Match  string
	}
	require.NoError(t, json.Unmarshal([]byte(out), &resp), out)
	require.Equal(t, "acme", resp.Tenant.Slug)
	require.Equal(t, "STATE_ACTIVE", resp.Tenant.State)
	require.Equal(t, "MATCH_SUBDOMAIN", resp.Match)
}

// requireKeptTokens requires the banner's tokens to be the ones kept in the
// dev directory's tokens.env, readable by its owner only.
func requireKeptTokens(t *testing.T, run *devRun, devDir string) {
	t.Helper()
	path := filepath.Join(devDir, "tokens.env")
	info, err := os.Stat(path)
	require.NoError(t, err)
	require.Equal(t, os.FileMode(0o600), info.Mode().Perm())
	kept, err := os.ReadFile(path)
	require.NoError(t, err)
	operator, service := run.exportedValue(t, "TENANTRY_OPERATOR_TOKEN"), run.exportedValue(t, "TENANTRY_SERVICE_TOKEN")
	require.Len(t, operator, 64)
	require.NotEqual(t, operator, service)
	// identity's key-encryption key is kept too, but never printed.
	rest, ok := strings.CutPrefix(string(kept), "TENANTRY_OPERATOR_TOKEN="+operator+"\nTENANTRY_SERVICE_TOKEN="+service+"\n")
	require.True(t, ok, "tokens.env holds other tokens than the banner's:\n%s", kept)
	m := regexp.MustCompile(`^TENANTRY_KEY_ENCRYPTION_KEY=([0-9a-f]{64})\nTENANTRY_COMPONENT_KEY=([0-9a-f]{64})\n$`).FindStringSubmatch(rest)
	require.NotNil(t, m, "tokens.env after the tokens:\n%s", rest)
	for _, key := range m[1:] {
		require.NotContains(t, strings.Join(run.banner, "\n"), key)
	}
}

// stopAndRequireGone interrupts a run with its private cluster in devDir and
// requires the services and the PostgreSQL server it started to be gone.
func stopAndRequireGone(t *testing.T, run *devRun, devDir string) {
	t.Helper()
	registryPID := run.servicePID(t, "tenant-registry")
	identityPID := run.servicePID(t, "identity")
	notesPID := run.servicePID(t, "notes")
	pidFile, err := os.ReadFile(filepath.Join(devDir, "postgres", "postmaster.pid"))
	require.NoError(t, err, "the cluster should run in TENANTRY_DEV_DIR")
	postmasterPID, err := strconv.Atoi(strings.SplitN(string(pidFile), "\n", 2)[0])
	require.NoError(t, err)
	require.True(t, running(postmasterPID, "postgres"), "postmaster.pid names no running postgres")

	run.interrupt(t)
	requireGone(t, notesPID, "notes")
	requireGone(t, identityPID, "identity")
	requireGone(t, registryPID, "tenant-registry")
	requireGone(t, postmasterPID, "postgres")
	require.NoFileExists(t, filepath.Join(devDir, "postgres", "postmaster.pid"))
}

// withPassword returns a database URL with its password replaced, or removed
// when password is empty.
func withPassword(t *testing.T, rawURL, password string) string {
	t.Helper()
	u, err := url.Parse(rawURL)
	require.NoError(t, err)
	name := "postgres"
	if u.User != nil {
		name = u.User.Username()
	}
	u.User = url.User(name)
	if password != "" {
		u.User = url.UserPassword(name, password)
	}
	return u.String()
}
