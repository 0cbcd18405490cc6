package server_test

import (
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"google.golang.org/grpc/codes"
	"google.golang.org/protobuf/types/known/fieldmaskpb"

	identityv1 "tenantry.dev/gen/tenantry/identity/v1"
	"tenantry.dev/identity/internal/account"
	"tenantry.dev/identity/internal/ratelimit"
	"tenantry.dev/platform/grpcerr"
)

// setLoginCeiling has tenant's admin set the tenant's login ceiling.
func setLoginCeiling(users identityv1.UserServiceClient, tenant, adminToken string, perSecond int32) (*identityv1.TenantSettings, error) {
	resp, err := users.UpdateTenantSettings(in(tenant, adminToken), &identityv1.UpdateTenantSettingsRequest{
		Settings:   &identityv1.TenantSettings{MaxLoginsPerSecond: perSecond},
		UpdateMask: &fieldmaskpb.FieldMask{Paths: []string{"max_logins_per_second"}},
	})
	return resp.GetSettings(), err
}

func TestTheTenantLoginCeilingIsATenantSetting(t *testing.T) {
	t.Parallel()
	s := startSystem(t, "plain", "small", "large")
	admins := map[string]string{}
	for _, tenant := range []string{"plain", "small", "large"} {
		admins[tenant] = s.makeAdmin(tenant, "admin@"+tenant+".example").GetAccessToken()
	}

	t.Run("a new tenant has the default, 50 a second", func(t *testing.T) {
		got, err := s.users.GetTenantSettings(in("plain", admins["plain"]), &identityv1.GetTenantSettingsRequest{})
		require.NoError(t, err)
		require.EqualValues(t, account.DefaultMaxLoginsPerSecond, got.GetSettings().GetMaxLoginsPerSecond())
		require.Equal(t, 50, account.DefaultMaxLoginsPerSecond)
		require.Equal(t, ratelimit.LoginPerTenant, ratelimit.LoginPerTenantAt(account.DefaultMaxLoginsPerSecond),
			"the limiter's default is the setting's")
	})

	for _, c := range []struct {
		name      string
		perSecond int32
	}{
		{"zero", 0},
		{"a negative rate", -5},
		{"more than 100,000 a second", 100_001},
	} {
		t.Run(c.name+" is refused with a field violation", func(t *testing.T) {
			_, err := setLoginCeiling(s.users, "plain", admins["plain"], c.perSecond)
			requireCode(t, err, codes.InvalidArgument)
			reason, fields := refusalOf(err)
			require.Equal(t, "MAX_LOGINS_PER_SECOND_INVALID", reason)
			require.Equal(t, []string{"settings.max_logins_per_second"}, fields)
		})
	}

	// Each step signs up accounts of its own and logs them all in at
	// once, each account once, so that only the tenant's ceiling can
	// refuse them (the limits per account allow 10 in a row, per address
	// 120 per tenant). Steps on one tenant run in order: the ceiling's
	// state carries over from one rate to the next.
	steps := []struct {
		name   string
		tenant string
		set    int32 // the ceiling the tenant's admin sets first; 0 leaves it
		logins int
		// refused: some logins are refused, and no more get through than
		// the ceiling's burst (five seconds' worth) and what it refilled
		// while the logins ran.
		refused bool
	}{
		{name: "the default lets 12 logins at once through", tenant: "plain", logins: 12},
		{name: "lowered to 1 a second, 12 at once meet the ceiling", tenant: "small", set: 1, logins: 12, refused: true},
		{name: "raised to 2,000 a second, the next 12 at once all get through", tenant: "small", set: 2000, logins: 12},
		{name: "a large tenant at 2,000 a second lets 30 at once through", tenant: "large", set: 2000, logins: 30},
		{name: "lowered to 2 a second, 30 at once meet the ceiling", tenant: "large", set: 2, logins: 30, refused: true},
	}
	// Every step's accounts are signed up first, at the default rate:
	// sign-ups have a ceiling of their own at the tenant's rate
	// (signup.tenant), which a lowered rate would meet.
	stepEmails := make([][]string, len(steps))
	next := 0
	for i, st := range steps {
		stepEmails[i] = make([]string, st.logins)
		for j := range stepEmails[i] {
			next++
			stepEmails[i][j] = fmt.Sprintf("user%d@%s.example", next, st.tenant)
			_, err := s.auth.SignUp(in(st.tenant), &identityv1.SignUpRequest{Email: stepEmails[i][j], Password: goodPassword})
			require.NoError(t, err)
		}
	}
	for i, st := range steps {
		t.Run(st.name, func(t *testing.T) {
			if st.set != 0 {
				got, err := setLoginCeiling(s.users, st.tenant, admins[st.tenant], st.set)
				require.NoError(t, err)
				require.Equal(t, st.set, got.GetMaxLoginsPerSecond())
			}
			emails := stepEmails[i]

			errs := make([]error, len(emails))
			var wg sync.WaitGroup
			started := time.Now()
			for i, email := range emails {
				wg.Go(func() { _, errs[i] = s.auth.Login(in(st.tenant), loginRequest(email, goodPassword)) })
			}
			wg.Wait()
			elapsed := time.Since(started)

			allowed, refused := 0, 0
			for _, err := range errs {
				if err == nil {
					allowed++
					continue
				}
				st := requireCode(t, err, codes.ResourceExhausted)
				require.Equal(t, ratelimit.ReasonRateLimited, grpcerr.Reason(st))
				require.Contains(t, st.Message(), "too many login attempts")
				delay, ok := grpcerr.RetryDelay(st)
				require.True(t, ok && delay > 0, "no RetryInfo")
				refused++
			}
			t.Logf("%d of %d logins got through, %d refused, in %v", allowed, len(emails), refused, elapsed)
			if !st.refused {
				require.Equal(t, len(emails), allowed, "every login gets through")
				return
			}
			require.Positive(t, refused, "no login met the ceiling")
			require.Positive(t, allowed, "the ceiling let none through")
			most := 5*int(st.set) + int(elapsed.Seconds()*float64(st.set)) + 1
			require.LessOrEqual(t, allowed, most, "more got through than the ceiling allows (in %v)", elapsed)
		})
	}
}
