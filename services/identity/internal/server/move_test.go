package server_test

import (
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"google.golang.org/grpc/codes"
	"google.golang.org/protobuf/types/known/durationpb"

	identityv1 "tenantry.dev/gen/tenantry/identity/v1"
	registryv1 "tenantry.dev/gen/tenantry/registry/v1"
	"tenantry.dev/identity/internal/smtptest"
	"tenantry.dev/kit/registrytest"
	"tenantry.dev/platform/pgtest"
)

// TestLoginsGoOnThroughATenantMove: identity serves a tenant that the
// registry moves to another placement; logins (each a session written)
// keep succeeding before, during and after the move, and the sessions made
// before it still authenticate on the new placement.
func TestLoginsGoOnThroughATenantMove(t *testing.T) {
	second := pgtest.NewDatabase(t)
	reg := registrytest.StartWith(t, registryBin, pgtest.NewDatabase(t), "-placements", "second="+second)
	s := &system{t: t, registry: reg, smtp: smtptest.Start(t, smtptest.Options{}), args: []string{"-placements", "second=" + second}}
	s.registry.Create("acme")
	s.startIdentity(reg.DBURL)
	before := s.signUpAndLogin("acme", "ada@example.com")
	// Several accounts, logged in in turn at a modest pace, so that the
	// per-account and per-address login limits never refuse one.
	const accounts = 20
	for i := range accounts {
		_, err := s.auth.SignUp(in("acme"), &identityv1.SignUpRequest{Email: fmt.Sprintf("user%d@example.com", i), Password: goodPassword})
		require.NoError(t, err)
	}
	var next atomic.Int64
	// A product service's watch of the tenant's account events, opened
	// before the move: it must follow the tenant to its new placement.
	watch := openWatch(t, identityv1.NewAccountEventServiceClient(registrytest.Dial(t, s.identity.Addr().String())),
		"acme", registrytest.ServiceToken, 3*time.Minute)

	var (
		logins   atomic.Int64
		failures []error
		mu       sync.Mutex
		stop     atomic.Bool
		wg       sync.WaitGroup
	)
	for range 2 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for !stop.Load() {
				time.Sleep(150 * time.Millisecond)
				email := fmt.Sprintf("user%d@example.com", next.Add(1)%accounts)
				login, err := s.auth.Login(in("acme"), &identityv1.LoginRequest{Email: email, Password: goodPassword})
				if err == nil {
					// The new session authenticates at once.
					_, err = s.auth.GetCurrentUser(in("acme", login.GetAccessToken()), &identityv1.GetCurrentUserRequest{})
				}
				if err != nil {
					mu.Lock()
					failures = append(failures, err)
					mu.Unlock()
					continue
				}
				logins.Add(1)
			}
		}()
	}
	registrytestEventually(t, "logins before the move", func() bool { return logins.Load() >= 3 })

	resp, err := reg.Operator.MoveTenant(reg.OperatorCtx(), &registryv1.MoveTenantRequest{Name: "tenants/acme", Placement: "second"})
	require.NoError(t, err)
	ops := registryv1.NewOperationServiceClient(registrytest.Dial(t, reg.Addr))
	op := resp.GetOperation()
	for !op.GetDone() {
		w, err := ops.WaitOperation(reg.OperatorCtx(), &registryv1.WaitOperationRequest{Name: op.GetName(), Timeout: durationpb.New(5 * time.Second)})
		require.NoError(t, err)
		op = w.GetOperation()
	}
	require.Nil(t, op.GetError(), "the move failed: %v", op.GetError())
	atSwitch := logins.Load()
	registrytestEventually(t, "logins after the move", func() bool {
		mu.Lock()
		defer mu.Unlock()
		require.Empty(t, failures, "logins failed through the move")
		return logins.Load() >= atSwitch+3
	})
	stop.Store(true)
	wg.Wait()
	require.Empty(t, failures, "logins failed through the move (%d succeeded)", logins.Load())

	// The session made before the move is on the new placement.
	me, err := s.auth.GetCurrentUser(in("acme", before.GetAccessToken()), &identityv1.GetCurrentUserRequest{})
	require.NoError(t, err)
	require.Equal(t, "ada@example.com", me.GetUser().GetEmail())
	refreshed, err := s.auth.RefreshSession(in("acme"), &identityv1.RefreshSessionRequest{RefreshToken: before.GetRefreshToken()})
	require.NoError(t, err, "the refresh token of a session made before the move")
	require.NotEmpty(t, refreshed.GetAccessToken())

	// The watch opened before the move sees an account made after it (it
	// would otherwise go on reading the old copy, frozen at the switch).
	_, err = s.auth.SignUp(in("acme"), &identityv1.SignUpRequest{Email: "after-the-move@example.com", Password: goodPassword})
	require.NoError(t, err)
	for {
		msg, err := watch.Recv()
		require.NoError(t, err, "the watch opened before the move")
		if email, _ := msg.GetEvent().GetData().AsMap()["email"].(string); email == "after-the-move@example.com" {
			break
		}
	}
	// And it ends as a new call would once the tenant is suspended.
	_, err = reg.Operator.SuspendTenant(reg.OperatorCtx(), &registryv1.SuspendTenantRequest{Name: "tenants/acme"})
	require.NoError(t, err)
	for {
		if _, err = watch.Recv(); err != nil {
			break
		}
	}
	requireCode(t, err, codes.FailedPrecondition)
	require.Equal(t, "TENANT_SUSPENDED", reasonOf(err))
}
