package main

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"time"

	"github.com/pquerna/otp/totp"

	identityv1 "tenantry.dev/gen/tenantry/identity/v1"
	"tenantry.dev/platform/benchkit"
)

// mfaLoginRun measures a login with a second factor (Login, then VerifyMfa
// with the authenticator app's code) against a password-only Login,
// interleaved, with the same concurrency, spread over every tenant (each
// second factor login charges its tenant's login ceiling twice). Each side
// has accounts of its own, signed up for this measure, used once each: the
// second factor's accounts have an authenticator app enrolled, whose
// secret this program keeps to compute codes, as the user's app would. A
// complete two-step login counts as one login. The second step is one
// HMAC and a few rows, no password hash: the target is that it costs
// little next to the hash (issue 12).
func (b *bench) mfaLoginRun(ctx context.Context) error {
	tenants := make([]string, b.cfg.tenants)
	for i := range tenants {
		tenants[i] = tenantSlug(i)
	}
	rate, err := b.loginRateBound(ctx)
	if err != nil {
		return err
	}
	n := max(accountsFor(rate, b.warmup(), b.measured(), 0), 1)
	plain := newAccountPool(prefixedAccounts("mfa-plain", tenants, n))
	withTOTP := newAccountPool(prefixedAccounts("mfa-totp", tenants, n))
	if err := b.signUpAll(ctx, "signing up accounts for the second factor measure", append(append([]account(nil), plain.accounts...), withTOTP.accounts...), ""); err != nil {
		return err
	}
	secrets, err := b.enrolAll(ctx, withTOTP.accounts)
	if err != nil {
		return err
	}
	if err := b.waitMailSent(ctx); err != nil {
		return err
	}

	b.log.Info("measuring Login with a second factor and password-only Login, interleaved",
		"clients", b.cfg.loginClients, "rounds", b.cfg.rounds, "round", b.cfg.duration)
	meters := []benchkit.CPUMeter{b.identityCPU}
	c, err := benchkit.Interleave(ctx, b.log, benchkit.Schedule{Rounds: b.cfg.rounds, Workers: b.cfg.loginClients, Duration: b.cfg.duration, Warmup: b.warmup()},
		benchkit.Side{Call: b.loginLoad(plain), CPU: meters},
		benchkit.Side{Call: b.mfaLoginLoad(withTOTP, secrets), CPU: meters})
	if err != nil {
		return err
	}
	for _, p := range []*accountPool{plain, withTOTP} {
		if reused := p.reused(); reused > 0 {
			b.tbl.Note("Login with a second factor: %d logins reused an account of the %s signed up.", reused, benchkit.FormatCount(len(p.accounts)))
		}
	}
	for _, m := range []struct {
		s    benchkit.Series
		tps  string
		what string
	}{
		{c.Base, kMFAPlainTPS, "password-only Login"},
		{c.Subject, kMFALoginTPS, "Login + VerifyMfa"},
	} {
		total := m.s.Total()
		if total.Calls == 0 {
			return fmt.Errorf("no %s succeeded: %w", m.what, total.Err())
		}
		if err := total.Err(); err != nil {
			b.unclean[kMFALoginRatio] = true
			b.tbl.Note("%s: %v", m.what, err)
		}
		b.tbl.Info(m.tps, benchkit.FormatFloat(m.s.MedianThroughput()))
	}
	mfa := c.Subject.Total()
	b.tbl.Info(kMFALoginP50, benchkit.FormatMillis(mfa.Latency.Percentile(0.50)))
	b.tbl.Info(kMFALoginP99, benchkit.FormatMillis(mfa.Latency.Percentile(0.99)))
	b.cpuRow(kMFALoginCPU, c.Subject, 0, time.Millisecond)
	b.tbl.Set(kMFALoginRatio, benchkit.FormatFloat(c.Ratio), benchkit.Verdict(c.Ratio >= minMFAVsPassword && b.clean(kMFALoginRatio)))
	return nil
}

// prefixedAccounts lays out n accounts over tenants round robin, as
// spreadAccounts does, with emails of their own.
func prefixedAccounts(prefix string, tenants []string, n int) []account {
	accounts := make([]account, n)
	for i := range accounts {
		accounts[i] = account{tenant: tenants[i%len(tenants)], email: fmt.Sprintf("%s-%06d@bench.example.com", prefix, i)}
	}
	return accounts
}

// enrolAll enrols an authenticator app on every account (Login,
// BeginTotpEnrollment, ConfirmTotpEnrollment with the current code) and
// returns the apps' secrets, in the accounts' order.
func (b *bench) enrolAll(ctx context.Context, accounts []account) ([]string, error) {
	secrets := make([]string, len(accounts))
	progress := benchkit.NewProgress(b.log, "enrolling authenticator apps", len(accounts))
	r := benchkit.RunCount(ctx, b.cfg.signupClients, len(accounts), func(ctx context.Context, i int) error {
		ctx, cancel := context.WithTimeout(ctx, callTimeout)
		defer cancel()
		a, c := accounts[i], b.fromSources.pick(i)
		resp, err := login(ctx, c, a, b.pass)
		if err != nil {
			return err
		}
		user := withUser(ctx, a.tenant, resp.GetAccessToken())
		begun, err := c.auth.BeginTotpEnrollment(user, &identityv1.BeginTotpEnrollmentRequest{})
		if err != nil {
			return fmt.Errorf("begin TOTP enrolment of %s: %w", a.email, err)
		}
		code, err := totp.GenerateCode(begun.GetSecret(), time.Now())
		if err != nil {
			return err
		}
		if _, err := c.auth.ConfirmTotpEnrollment(user, &identityv1.ConfirmTotpEnrollmentRequest{TotpCode: code}); err != nil {
			return fmt.Errorf("confirm TOTP enrolment of %s: %w", a.email, err)
		}
		secrets[i] = begun.GetSecret()
		return nil
	}, progress.Report)
	if err := r.Err(); err != nil {
		return nil, fmt.Errorf("TOTP enrolment: %w", err)
	}
	progress.Done(int(r.Calls))
	return secrets, nil
}

// mfaLoginLoad logs in with the pool's accounts in turn, each login from
// the next source address: Login answers a challenge, which VerifyMfa
// trades with the app's code for the session. The code is the next time
// step's (accepted with one step of skew): the enrolment spent the step it
// was made in, and a code is accepted once per step.
func (b *bench) mfaLoginLoad(pool *accountPool, secrets []string) benchkit.CallFunc {
	return func(ctx context.Context, _ int, _ *rand.Rand) error {
		a, i := pool.take()
		c := b.fromSources.pick(i)
		first, err := c.auth.Login(withTenant(ctx, a.tenant), &identityv1.LoginRequest{Email: a.email, Password: b.pass})
		if err != nil {
			return fmt.Errorf("log in %s in %s: %w", a.email, a.tenant, err)
		}
		if first.GetMfaChallenge().GetToken() == "" || first.GetAccessToken() != "" {
			return errors.New("login of an account with a second factor: no challenge, or a session without the factor")
		}
		code, err := totp.GenerateCode(secrets[i%len(secrets)], time.Now().Add(30*time.Second))
		if err != nil {
			return err
		}
		resp, err := c.auth.VerifyMfa(withTenant(ctx, a.tenant), &identityv1.VerifyMfaRequest{MfaChallenge: first.GetMfaChallenge().GetToken(), TotpCode: code})
		if err != nil {
			return fmt.Errorf("second factor of %s in %s: %w", a.email, a.tenant, err)
		}
		b.keepToken(resp.GetAccessToken())
		return nil
	}
}
