package server_test

import (
	"context"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"
	"google.golang.org/grpc/codes"

	identityv1 "tenantry.dev/gen/tenantry/identity/v1"
	"tenantry.dev/identity/internal/server"
)

// TestEmailAddresses: an account adds an address, verifies it by the
// mailed link, makes it primary (logging in then takes it, not the old
// one, which is told) and removes the old one; the refusals; another
// account's address is refused without saying so; each change needs a
// recent proof; nothing crosses tenants.
func TestEmailAddresses(t *testing.T) {
	t.Parallel()
	clock := &testClock{}
	s := startSystemOpts(t, nil, server.Options{Now: clock.Now}, "addra", "addrb")
	accounts := identityv1.NewAccountServiceClient(s.conn)
	const ann, annWork, annHome = "ann@example.com", "ann.work@example.com", "ann.home@example.com"
	annCtx := in("addra", s.signUpAndLogin("addra", ann).GetAccessToken())
	bobCtx := in("addra", s.signUpAndLogin("addra", "bob@example.com").GetAccessToken())

	list := func(ctx context.Context) []*identityv1.EmailAddress {
		t.Helper()
		resp, err := accounts.ListEmailAddresses(ctx, &identityv1.ListEmailAddressesRequest{})
		require.NoError(t, err)
		return resp.GetEmailAddresses()
	}
	add := func(ctx context.Context, email string) error {
		_, err := accounts.AddEmailAddress(ctx, &identityv1.AddEmailAddressRequest{Email: email})
		return err
	}
	setPrimary := func(ctx context.Context, email string) error {
		_, err := accounts.SetPrimaryEmailAddress(ctx, &identityv1.SetPrimaryEmailAddressRequest{Email: email})
		return err
	}
	remove := func(ctx context.Context, email string) error {
		_, err := accounts.RemoveEmailAddress(ctx, &identityv1.RemoveEmailAddressRequest{Email: email})
		return err
	}
	refused := func(t *testing.T, err error, code codes.Code, reason string) {
		t.Helper()
		requireCode(t, err, code)
		require.Equal(t, reason, reasonOf(err))
	}

	t.Run("an added address is verified by its link, made primary, and the old one removed", func(t *testing.T) {
		require.NoError(t, add(annCtx, " Ann.Work@Example.com "))
		_, _, token := s.mailTo(annWork, "Confirm your email address")
		require.NotEmpty(t, token)
		got := list(annCtx)
		require.Len(t, got, 2)
		require.True(t, got[0].GetPrimary())
		require.Equal(t, ann, got[0].GetEmail())
		require.Equal(t, annWork, got[1].GetEmail())
		require.False(t, got[1].GetPrimary())
		require.False(t, got[1].GetVerified())
		require.NotNil(t, got[1].GetCreateTime())

		refused(t, setPrimary(annCtx, annWork), codes.FailedPrecondition, "EMAIL_ADDRESS_UNVERIFIED")
		refused(t, add(annCtx, ann), codes.AlreadyExists, "EMAIL_ADDRESS_EXISTS")

		// The link needs no login: it is the proof.
		v, err := accounts.VerifyEmailAddress(in("addra"), &identityv1.VerifyEmailAddressRequest{Token: token})
		require.NoError(t, err)
		require.Equal(t, annWork, v.GetEmail())
		_, err = accounts.VerifyEmailAddress(in("addra"), &identityv1.VerifyEmailAddressRequest{Token: token})
		refused(t, err, codes.InvalidArgument, "TOKEN_INVALID")
		require.True(t, list(annCtx)[1].GetVerified())

		_, err = s.auth.Login(in("addra"), loginRequest(annWork, goodPassword))
		requireCode(t, err, codes.Unauthenticated) // a secondary address is no login name
		refused(t, remove(annCtx, ann), codes.FailedPrecondition, "EMAIL_ADDRESS_PRIMARY")

		require.NoError(t, setPrimary(annCtx, annWork))
		_, body, _ := s.mailTo(ann, "Your email address")
		require.Contains(t, body, annWork)
		got = list(annCtx)
		require.Len(t, got, 2)
		require.Equal(t, annWork, got[0].GetEmail())
		require.True(t, got[0].GetPrimary())
		require.Equal(t, ann, got[1].GetEmail())

		_, err = s.auth.Login(in("addra"), loginRequest(annWork, goodPassword))
		require.NoError(t, err, "the new primary logs in")
		_, err = s.auth.Login(in("addra"), loginRequest(ann, goodPassword))
		requireCode(t, err, codes.Unauthenticated)

		require.NoError(t, remove(annCtx, ann))
		require.Len(t, list(annCtx), 1)
		refused(t, remove(annCtx, ann), codes.NotFound, "EMAIL_ADDRESS_NOT_FOUND")

		events := s.auditEvents("addra", annWork)
		for _, e := range []string{"user.email_address_added", "user.email_address_verified", "user.primary_email_changed", "user.email_address_removed"} {
			require.Contains(t, events, e)
		}
		require.Equal(t, []string{"user.email_address_added", "user.email_address_verified", "user.primary_email_changed", "user.email_address_removed"},
			s.accountEventCauses("addra", "user.updated"), "each change is a user.updated account event")
	})

	t.Run("the verification page's VerifyEmail takes an added address's link too", func(t *testing.T) {
		require.NoError(t, add(annCtx, annHome))
		_, _, token := s.mailTo(annHome, "Confirm your email address")
		v, err := s.auth.VerifyEmail(in("addra"), &identityv1.VerifyEmailRequest{Token: token})
		require.NoError(t, err)
		require.Equal(t, annHome, v.GetEmail())
		require.True(t, list(annCtx)[1].GetVerified())
	})

	t.Run("another account's address is refused without saying so: same answer, and its mailbox is told", func(t *testing.T) {
		for _, taken := range []string{annWork, annHome} { // ann's primary, and her verified secondary
			before := s.mailsTo(taken)
			require.NoError(t, add(bobCtx, taken), "the same answer as for a free address")
			_, body, token := s.mailTo(taken, "Someone tried to use your email address")
			require.Empty(t, token, "no verification link")
			require.NotContains(t, body, "Confirm")
			require.Equal(t, before+1, s.mailsTo(taken))
		}
		require.NoError(t, add(bobCtx, "bob.free@example.com"))
		got := list(bobCtx)
		require.Len(t, got, 4, "listed alike, as pending")
		for _, a := range got[1:] {
			require.False(t, a.GetVerified())
		}
		refused(t, setPrimary(bobCtx, annHome), codes.FailedPrecondition, "EMAIL_ADDRESS_UNVERIFIED")
		require.Contains(t, s.auditEvents("addra", annWork), "user.email_address_claim_attempted", "the owner's log says so")

		// Signing up with ann's secondary address makes no account.
		before := s.mailsTo(annHome)
		_, err := s.auth.SignUp(in("addra"), &identityv1.SignUpRequest{Email: annHome, Password: goodPassword})
		require.NoError(t, err)
		registrytestEventually(t, "the owner told", func() bool { return s.mailsTo(annHome) > before })
		_, err = s.auth.Login(in("addra"), loginRequest(annHome, goodPassword))
		requireCode(t, err, codes.Unauthenticated)
	})

	t.Run("a pending address reserves nothing: the first account to verify it has it", func(t *testing.T) {
		const shared = "shared@example.com"
		annToken := s.nextToken(shared, func() error { return add(annCtx, shared) })
		bobToken := s.nextToken(shared, func() error { return add(bobCtx, shared) })
		_, err := accounts.VerifyEmailAddress(in("addra"), &identityv1.VerifyEmailAddressRequest{Token: bobToken})
		require.NoError(t, err)
		_, err = accounts.VerifyEmailAddress(in("addra"), &identityv1.VerifyEmailAddressRequest{Token: annToken})
		refused(t, err, codes.AlreadyExists, "EMAIL_TAKEN")
	})

	t.Run("the store keeps an address with one account even when the rules are bypassed", func(t *testing.T) {
		// What a lost race would do: write ann's primary as bob's verified
		// address, and bob's verified address as a new account's primary.
		db, err := pgx.Connect(context.Background(), s.registry.DBURL)
		require.NoError(t, err)
		defer db.Close(context.Background())
		users, addresses := pgx.Identifier{"addra", "users"}.Sanitize(), pgx.Identifier{"addra", "email_addresses"}.Sanitize()
		_, err = db.Exec(context.Background(), `INSERT INTO `+addresses+` (user_id, email, create_time, verify_time)
			SELECT id, $1, now(), now() FROM `+users+` WHERE email = 'bob@example.com'`, annWork)
		require.ErrorContains(t, err, "taken by another account")
		_, err = db.Exec(context.Background(), `UPDATE `+users+` SET email = 'shared@example.com' WHERE email = $1`, annWork)
		require.ErrorContains(t, err, "taken by another account")

		// The race itself: bob takes race@ as his primary in a transaction
		// not yet committed; ann's verified race@, written meanwhile,
		// waits for it (the advisory lock), then sees it and is refused.
		ctx := context.Background()
		other, err := pgx.Connect(ctx, s.registry.DBURL)
		require.NoError(t, err)
		defer other.Close(ctx)
		bobConn, err := pgx.Connect(ctx, s.registry.DBURL)
		require.NoError(t, err)
		defer bobConn.Close(ctx)
		const race = "race@example.com"
		// db, in no transaction, watches: its statistics are fresh each time.
		bob, err := bobConn.Begin(ctx)
		require.NoError(t, err)
		_, err = bob.Exec(ctx, `UPDATE `+users+` SET email = $1 WHERE email = 'bob@example.com'`, race)
		require.NoError(t, err)
		annWrote := make(chan error, 1)
		go func() {
			_, err := other.Exec(ctx, `INSERT INTO `+addresses+` (user_id, email, create_time, verify_time)
				SELECT id, $1, now(), now() FROM `+users+` WHERE email = $2`, race, annWork)
			annWrote <- err
		}()
		registrytestEventually(t, "ann's write waiting for bob's", func() bool {
			var waiting bool
			err := db.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM pg_stat_activity WHERE pid = $1 AND wait_event_type = 'Lock')`,
				other.PgConn().PID()).Scan(&waiting)
			return err == nil && waiting
		})
		require.NoError(t, bob.Commit(ctx))
		require.ErrorContains(t, <-annWrote, "taken by another account")
	})

	t.Run("each change needs a recent proof; listing does not", func(t *testing.T) {
		clock.Advance(ReauthWindowForTests + time.Minute)
		refused(t, add(annCtx, "ann.late@example.com"), codes.PermissionDenied, "REAUTHENTICATION_REQUIRED")
		refused(t, setPrimary(annCtx, annHome), codes.PermissionDenied, "REAUTHENTICATION_REQUIRED")
		refused(t, remove(annCtx, annHome), codes.PermissionDenied, "REAUTHENTICATION_REQUIRED")
		require.NotEmpty(t, list(annCtx))
		_, err := s.auth.Reauthenticate(annCtx, &identityv1.ReauthenticateRequest{Password: goodPassword})
		require.NoError(t, err)
		require.NoError(t, remove(annCtx, annHome))
	})

	t.Run("the export carries the addresses", func(t *testing.T) {
		resp, err := accounts.ExportAccountData(annCtx, &identityv1.ExportAccountDataRequest{})
		require.NoError(t, err)
		emails := resp.GetData().AsMap()["emails"].([]any)
		require.Len(t, emails, 2)
		require.Equal(t, annWork, emails[0].(map[string]any)["email"])
		require.Equal(t, true, emails[0].(map[string]any)["primary"])
		require.NotContains(t, emails[0], "verify_time", "no time is kept for a primary's verification")
		require.NotEmpty(t, emails[1].(map[string]any)["create_time"])
		require.Equal(t, "shared@example.com", emails[1].(map[string]any)["email"])
		require.Equal(t, false, emails[1].(map[string]any)["verified"], "bob verified it first")
	})

	t.Run("nothing crosses tenants", func(t *testing.T) {
		carol := s.signUpAndLogin("addrb", "carol@example.com")
		carolCtx := in("addrb", carol.GetAccessToken())
		refused(t, remove(carolCtx, "shared@example.com"), codes.NotFound, "EMAIL_ADDRESS_NOT_FOUND")
		refused(t, setPrimary(carolCtx, annWork), codes.NotFound, "EMAIL_ADDRESS_NOT_FOUND")
		_, err := accounts.ListEmailAddresses(in("addra", carol.GetAccessToken()), &identityv1.ListEmailAddressesRequest{})
		requireCode(t, err, codes.Unauthenticated)

		// An address is one account's per tenant: tenant B's account may
		// have ann's, and a link of tenant A does nothing in tenant B.
		token := s.nextToken(annWork, func() error { return add(carolCtx, annWork) })
		annToken := s.nextToken("ann.again@example.com", func() error { return add(annCtx, "ann.again@example.com") })
		_, err = accounts.VerifyEmailAddress(in("addrb"), &identityv1.VerifyEmailAddressRequest{Token: annToken})
		refused(t, err, codes.InvalidArgument, "TOKEN_INVALID")
		_, err = accounts.VerifyEmailAddress(in("addrb"), &identityv1.VerifyEmailAddressRequest{Token: token})
		require.NoError(t, err)
		require.Len(t, list(annCtx), 3, "ann's addresses are as they were")
	})
}

// tokensTo lists the tokens of the links mailed to addr, oldest first.
func (s *system) tokensTo(addr string) []string {
	var tokens []string
	for _, m := range s.smtp.Messages() {
		if !containsAddr(m.To, addr) {
			continue
		}
		if match := tokenLink.FindStringSubmatch(decodeBody(s.t, m.Data)); match != nil {
			tokens = append(tokens, match[1])
		}
	}
	return tokens
}

// nextToken runs action and returns the token of the next link mailed to
// addr.
func (s *system) nextToken(addr string, action func() error) string {
	s.t.Helper()
	before := len(s.tokensTo(addr))
	require.NoError(s.t, action())
	var token string
	registrytestEventually(s.t, "a link mailed to "+addr, func() bool {
		if tokens := s.tokensTo(addr); len(tokens) > before {
			token = tokens[before]
			return true
		}
		return false
	})
	return token
}

func containsAddr(to []string, addr string) bool {
	for _, a := range to {
		if a == addr {
			return true
		}
	}
	return false
}

// accountEventCauses lists the audit events behind a tenant's account
// events of a type, in order.
func (s *system) accountEventCauses(tenant, typ string) []string {
	s.t.Helper()
	ctx := context.Background()
	db, err := pgx.Connect(ctx, s.registry.DBURL)
	require.NoError(s.t, err)
	defer db.Close(ctx)
	rows, err := db.Query(ctx, `SELECT data->>'audit_event' FROM `+pgx.Identifier{tenant, "account_events"}.Sanitize()+
		` WHERE type = $1 ORDER BY revision`, typ)
	require.NoError(s.t, err)
	causes, err := pgx.CollectRows(rows, pgx.RowTo[string])
	require.NoError(s.t, err)
	return causes
}
