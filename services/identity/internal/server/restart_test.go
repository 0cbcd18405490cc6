package server_test

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	identityv1 "tenantry.dev/gen/tenantry/identity/v1"
	"tenantry.dev/identity/internal/smtptest"
	"tenantry.dev/kit/registrytest"
	"tenantry.dev/platform/pgtest"
)

// A database restart in the middle of sign-ups loses none that identity
// acknowledged, and identity recovers without a restart of its own.
func TestDatabaseRestartMidLoadKeepsAcknowledgedSignUps(t *testing.T) {
	t.Parallel()
	cluster := pgtest.NewCluster(t)
	url := cluster.URL("postgres")
	s := &system{t: t, registry: registrytest.StartOn(t, registryBin, url), smtp: smtptest.Start(t, smtptest.Options{})}
	s.registry.Create("demo")
	s.startIdentity(url)

	var (
		mu    sync.Mutex
		acked []string
		seq   atomic.Int64
		wg    sync.WaitGroup
	)
	ctx, stop := context.WithCancel(context.Background())
	defer stop()
	for w := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for ctx.Err() == nil {
				email := fmt.Sprintf("load-%d-%d@example.com", w, seq.Add(1))
				callCtx, cancel := context.WithTimeout(in("demo"), 10*time.Second)
				_, err := s.auth.SignUp(callCtx, &identityv1.SignUpRequest{Email: email, Password: goodPassword})
				cancel()
				if err == nil {
					mu.Lock()
					acked = append(acked, email)
					mu.Unlock()
				}
			}
		}()
	}
	count := func() int { mu.Lock(); defer mu.Unlock(); return len(acked) }
	registrytest.Eventually(t, "sign-ups before the restart", func() bool { return count() >= 5 })

	restartCtx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	require.NoError(t, cluster.Restart(restartCtx))
	before := count()
	registrytest.Eventually(t, "sign-ups to be acknowledged again after the restart", func() bool { return count() >= before+5 })
	stop()
	wg.Wait()

	// Every acknowledged sign-up is there.
	have := map[string]bool{}
	token := ""
	for {
		page, err := s.users.ListUsers(asOperator("demo"), &identityv1.ListUsersRequest{PageSize: 1000, PageToken: token})
		require.NoError(t, err)
		for _, u := range page.GetUsers() {
			have[u.GetEmail()] = true
		}
		if token = page.GetNextPageToken(); token == "" {
			break
		}
	}
	for _, email := range acked {
		require.True(t, have[email], "acknowledged sign-up %s is missing", email)
	}
	t.Logf("%d sign-ups acknowledged, all present", len(acked))
}
