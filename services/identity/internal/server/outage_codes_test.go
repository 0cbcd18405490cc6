package server_test

import (
	"context"
	"fmt"
	"net/http"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	identityv1 "tenantry.dev/gen/tenantry/identity/v1"
	"tenantry.dev/identity/internal/smtptest"
	"tenantry.dev/kit/registrytest"
	"tenantry.dev/platform/grpcerr"
	"tenantry.dev/platform/pgtest"
)

// While PostgreSQL is stopped, every identity call that needs it — the rate
// limiter before a login, sign-up, the session check behind a bearer token,
// the operator's reads — answers UNAVAILABLE with reason
// DATABASE_UNAVAILABLE and a retry delay (HTTP 503 over REST), never
// INTERNAL; and identity serves again once the database is back.
func TestDatabaseOutageIsUnavailableNeverInternal(t *testing.T) {
	t.Parallel()
	cluster := pgtest.NewCluster(t)
	url := cluster.URL("postgres")
	s := &system{
		t:        t,
		registry: registrytest.StartOn(t, registryBin, url),
		smtp:     smtptest.Start(t, smtptest.Options{}),
		// No session cache: every bearer token is checked against the
		// database, as a replica that has not seen the session yet does.
		args: []string{"-session-cache-ttl", "0"},
	}
	s.registry.Create("demo")
	s.startIdentity(url)
	login := s.signUpAndLogin("demo", "before@example.com")
	bearer := login.GetAccessToken()

	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	require.NoError(t, cluster.Stop(ctx))

	calls := []struct {
		name   string
		bearer []string // the token the call sends, if any
		call   func(ctx context.Context) error
	}{
		{"SignUp", nil, func(ctx context.Context) error {
			_, err := s.auth.SignUp(ctx, &identityv1.SignUpRequest{Email: "during@example.com", Password: goodPassword})
			return err
		}},
		{"Login (the rate limiter's check comes first)", nil, func(ctx context.Context) error {
			_, err := s.auth.Login(ctx, loginRequest("before@example.com", goodPassword))
			return err
		}},
		{"Login with a wrong password", nil, func(ctx context.Context) error {
			_, err := s.auth.Login(ctx, loginRequest("before@example.com", "not the password at all"))
			return err
		}},
		{"RequestPasswordReset", nil, func(ctx context.Context) error {
			_, err := s.auth.RequestPasswordReset(ctx, &identityv1.RequestPasswordResetRequest{Email: "before@example.com"})
			return err
		}},
		{"RefreshSession", nil, func(ctx context.Context) error {
			_, err := s.auth.RefreshSession(ctx, &identityv1.RefreshSessionRequest{RefreshToken: login.GetRefreshToken()})
			return err
		}},
		{"GetCurrentUser (the session check)", []string{bearer}, func(ctx context.Context) error {
			_, err := s.auth.GetCurrentUser(ctx, &identityv1.GetCurrentUserRequest{})
			return err
		}},
		{"ListSessions", []string{bearer}, func(ctx context.Context) error {
			_, err := s.auth.ListSessions(ctx, &identityv1.ListSessionsRequest{})
			return err
		}},
		{"ListUsers as operator", []string{registrytest.OperatorToken}, func(ctx context.Context) error {
			_, err := s.users.ListUsers(ctx, &identityv1.ListUsersRequest{})
			return err
		}},
		{"GetUser as operator", []string{registrytest.OperatorToken}, func(ctx context.Context) error {
			_, err := s.users.GetUser(ctx, &identityv1.GetUserRequest{Name: login.GetUser().GetName()})
			return err
		}},
	}
	for _, c := range calls {
		t.Run(c.name+" is UNAVAILABLE with DATABASE_UNAVAILABLE and a retry delay", func(t *testing.T) {
			callCtx, cancel := context.WithTimeout(in("demo", c.bearer...), 30*time.Second)
			defer cancel()
			requireDatabaseUnavailable(t, c.call(callCtx))
		})
	}

	t.Run("Login over REST is 503 Service Unavailable", func(t *testing.T) {
		code, body := s.rest(http.MethodPost, "demo.localhost", "/v1/auth:login",
			`{"email":"before@example.com","password":"`+goodPassword+`"}`)
		require.Equal(t, http.StatusServiceUnavailable, code, "%s", body)
		require.Contains(t, string(body), "DATABASE_UNAVAILABLE")
	})

	require.NoError(t, cluster.Start(ctx))
	registrytest.Eventually(t, "a login to succeed once the database is back", func() bool {
		callCtx, cancel := context.WithTimeout(in("demo"), 10*time.Second)
		defer cancel()
		_, err := s.auth.Login(callCtx, loginRequest("before@example.com", goodPassword))
		return err == nil
	})
}

// Under load across a restart, as in the black-box test that found 949
// INTERNAL answers, calls that fail while the database goes down and comes
// back (connections terminated mid-query, refused, "the database system is
// starting up") fail as UNAVAILABLE or another code a client can act on,
// never INTERNAL or UNKNOWN.
func TestDatabaseRestartUnderLoadNeverAnswersInternal(t *testing.T) {
	t.Parallel()
	cluster := pgtest.NewCluster(t)
	url := cluster.URL("postgres")
	s := &system{
		t:        t,
		registry: registrytest.StartOn(t, registryBin, url),
		smtp:     smtptest.Start(t, smtptest.Options{}),
		args:     []string{"-session-cache-ttl", "0"},
	}
	s.registry.Create("demo")
	s.startIdentity(url)
	bearer := s.signUpAndLogin("demo", "load@example.com").GetAccessToken()

	var (
		mu     sync.Mutex
		counts = map[codes.Code]int{}
		bad    []string
		seq    atomic.Int64
		wg     sync.WaitGroup
	)
	record := func(what string, err error) {
		st := status.Convert(err)
		mu.Lock()
		defer mu.Unlock()
		counts[st.Code()]++
		if st.Code() == codes.Internal || st.Code() == codes.Unknown {
			bad = append(bad, what+": "+st.Code().String()+": "+st.Message())
		}
	}
	count := func(code codes.Code) int { mu.Lock(); defer mu.Unlock(); return counts[code] }
	ctx, stop := context.WithCancel(context.Background())
	defer stop()
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for ctx.Err() == nil {
				callCtx, cancel := context.WithTimeout(in("demo"), 10*time.Second)
				_, err := s.auth.SignUp(callCtx, &identityv1.SignUpRequest{
					Email: fmt.Sprintf("load-%d@example.com", seq.Add(1)), Password: goodPassword})
				cancel()
				record("SignUp", err)
				callCtx, cancel = context.WithTimeout(in("demo", bearer), 10*time.Second)
				_, err = s.auth.GetCurrentUser(callCtx, &identityv1.GetCurrentUserRequest{})
				cancel()
				record("GetCurrentUser", err)
			}
		}()
	}
	registrytest.Eventually(t, "calls to succeed before the restart", func() bool { return count(codes.OK) >= 10 })

	restartCtx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	require.NoError(t, cluster.Restart(restartCtx))
	before := count(codes.OK)
	registrytest.Eventually(t, "calls to succeed again after the restart", func() bool { return count(codes.OK) >= before+10 })
	stop()
	wg.Wait()

	t.Logf("answers across the restart: %v", counts)
	require.Empty(t, bad, "calls answered INTERNAL or UNKNOWN during the restart")
	require.Positive(t, counts[codes.Unavailable], "no call saw the database down: the test did not test anything")
}

// requireDatabaseUnavailable checks that err is what a client must see
// during a database outage: UNAVAILABLE, reason DATABASE_UNAVAILABLE, a
// retry delay, and nothing about the database.
func requireDatabaseUnavailable(t *testing.T, err error) {
	t.Helper()
	st := requireCode(t, err, codes.Unavailable)
	require.Equal(t, "the database is unavailable; retry shortly", st.Message())
	require.Equal(t, "DATABASE_UNAVAILABLE", grpcerr.Reason(st))
	delay, ok := grpcerr.RetryDelay(st)
	require.True(t, ok && delay > 0, "no RetryInfo")
}
