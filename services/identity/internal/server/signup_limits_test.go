package server_test

import (
	"context"
	"fmt"
	"regexp"
	"testing"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/require"
	"google.golang.org/grpc/codes"

	identityv1 "tenantry.dev/gen/tenantry/identity/v1"
	"tenantry.dev/identity/internal/ratelimit"
)

// TestSignUpsAreLimitedAndTheirNoticesDeduplicated: sign-up was not rate
// limited at all, so anyone could mail an account holder ("someone tried
// to use your email address") or any stranger ("choose another username",
// by signing up with a taken username and the stranger's address) as often
// as they liked, each time also costing a password hash. Now sign-ups with
// one address, and from one client address, are refused beyond their
// budget with RESOURCE_EXHAUSTED RATE_LIMITED, alike whether the address
// is free or taken; and one mailbox gets at most one such notice of each
// kind an hour, however many sign-ups name it.
func TestSignUpsAreLimitedAndTheirNoticesDeduplicated(t *testing.T) {
	t.Parallel()
	// 12 sign-ups an hour from one client address, so that the test
	// reaches the limit quickly; the one per email address is the preset.
	const perAddress = 12
	s := startSystemWith(t, []string{"-signup-limit-per-address", fmt.Sprint(perAddress)}, "holder", "strangers")
	db, err := pgxpool.New(context.Background(), s.registry.DBURL)
	require.NoError(t, err)
	t.Cleanup(db.Close)
	// The outbox holds every mail enqueued, sent or not: counting its rows
	// does not depend on the SMTP worker's pace.
	queued := func(tenant, to, kind string) int {
		t.Helper()
		var n int
		require.NoError(t, db.QueryRow(context.Background(), `SELECT count(*) FROM tenantry_identity.outbox
			WHERE tenant = $1 AND recipient = $2 AND kind = $3`, tenant, to, kind).Scan(&n))
		return n
	}
	signUp := func(tenant, email, username string) error {
		_, err := s.auth.SignUp(in(tenant), &identityv1.SignUpRequest{Email: email, Password: goodPassword, Username: username})
		return err
	}
	digits := regexp.MustCompile(`[0-9]+`)
	// refusal returns what a client sees of a refused sign-up, the wait's
	// number aside.
	refusal := func(t *testing.T, err error) string {
		t.Helper()
		st := requireCode(t, err, codes.ResourceExhausted)
		reason, _ := refusalOf(err)
		require.Equal(t, ratelimit.ReasonRateLimited, reason)
		require.Contains(t, st.Message(), "too many sign-ups; retry in")
		return digits.ReplaceAllString(st.Message(), "N")
	}

	t.Run("an account holder's address: the burst, then refusals, and one notice", func(t *testing.T) {
		const holder = "holder@example.com"
		require.NoError(t, signUp("holder", holder, ""))
		for i := 1; i < ratelimit.SignUpPerAccountAddress.Burst; i++ {
			require.NoError(t, signUp("holder", holder, ""), "sign-up %d with a registered address, within the burst", i+1)
		}
		for range 3 {
			refusal(t, signUp("holder", holder, ""))
		}
		require.Equal(t, 1, queued("holder", holder, "account_exists"),
			"%d sign-ups with a registered address mail its owner once", ratelimit.SignUpPerAccountAddress.Burst-1)
		s.mailTo(holder, "Someone tried to use your email address")
	})

	t.Run("a stranger named with a taken username: one notice, and the client's budget ends", func(t *testing.T) {
		require.NoError(t, signUp("strangers", "bob@example.com", "bob"))
		const stranger = "stranger@example.net"
		for range 3 {
			require.NoError(t, signUp("strangers", stranger, "bob"))
		}
		require.Equal(t, 1, queued("strangers", stranger, "username_taken"), "three sign-ups naming the stranger mail them once")
		for i := 4; i < perAddress; i++ {
			require.NoError(t, signUp("strangers", fmt.Sprintf("stranger%d@example.net", i), "bob"), "sign-up %d from the client, within its budget", i+1)
		}
		// The client address's budget is spent: a free address, a taken
		// one and a taken username are refused alike.
		free := refusal(t, signUp("strangers", "free@example.org", ""))
		taken := refusal(t, signUp("strangers", "bob@example.com", ""))
		username := refusal(t, signUp("strangers", "another@example.net", "bob"))
		require.Equal(t, free, taken, "a refusal does not say whether the address is registered")
		require.Equal(t, free, username)
		require.Zero(t, queued("strangers", "free@example.org", "verification")+queued("strangers", "free@example.org", "welcome"),
			"a refused sign-up creates nothing and mails nothing")
		require.Zero(t, queued("strangers", "another@example.net", "username_taken"))
		list, err := s.users.ListUsers(asOperator("strangers"), &identityv1.ListUsersRequest{})
		require.NoError(t, err)
		require.Len(t, list.GetUsers(), 1, "only bob has an account")
	})
}
