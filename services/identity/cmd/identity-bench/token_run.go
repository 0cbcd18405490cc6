package main

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"time"

	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/protobuf/types/known/fieldmaskpb"

	identityv1 "tenantry.dev/gen/tenantry/identity/v1"
	"tenantry.dev/platform/benchkit"
)

// jwksRun measures what validating an access token costs a caller that
// holds the JWKS: row 3. The JWKS is fetched once over gRPC; the tokens
// are real ones from the logins measured before.
func (b *bench) jwksRun(ctx context.Context) error {
	b.tokensMu.Lock()
	tokens := append([]string(nil), b.tokens...)
	b.tokensMu.Unlock()
	if len(tokens) == 0 {
		return errors.New("no access tokens to verify: no login succeeded before")
	}
	callCtx, cancel := context.WithTimeout(ctx, callTimeout)
	jwks, err := b.shared.pick(0).tokens.GetJwks(callCtx, &identityv1.GetJwksRequest{})
	cancel()
	if err != nil {
		return fmt.Errorf("GetJwks: %w", err)
	}
	v, err := newJWKSVerifier(jwks.GetKeys(), benchIssuer)
	if err != nil {
		return err
	}
	signed := make([]signedToken, len(tokens))
	for i, tok := range tokens {
		if _, err := v.verify(tok); err != nil {
			return fmt.Errorf("an access token from Login does not verify with the JWKS: %w", err)
		}
		if signed[i], err = v.splitSigned(tok); err != nil {
			return err
		}
	}

	// A CPU-bound loop needs no long rounds: slices of at most a second.
	duration := min(b.cfg.duration, time.Second)
	b.log.Info("measuring access-token verification with the JWKS against bare ed25519, interleaved", "tokens", len(tokens))
	c, err := benchkit.Interleave(ctx, b.log, benchkit.Schedule{Rounds: b.cfg.rounds, Workers: 1, Duration: duration, Warmup: b.warmup()},
		benchkit.Side{Call: func(_ context.Context, _ int, rng *rand.Rand) error { return signed[rng.IntN(len(signed))].verify() }, CPU: []benchkit.CPUMeter{benchkit.SelfCPUTime}},
		benchkit.Side{Call: func(_ context.Context, _ int, rng *rand.Rand) error {
			_, err := v.verify(tokens[rng.IntN(len(tokens))])
			return err
		}, CPU: []benchkit.CPUMeter{benchkit.SelfCPUTime}})
	if err != nil {
		return err
	}
	for _, s := range []benchkit.Series{c.Base, c.Subject} {
		if err := s.Total().Err(); err != nil {
			return err
		}
	}
	b.tbl.Info(kEd25519TPS, benchkit.FormatFloat(c.Base.MedianThroughput()))
	b.tbl.Info(kJWTTPS, benchkit.FormatFloat(c.Subject.MedianThroughput()))
	b.cpuRow(kJWTCPU, c.Subject, 0, time.Microsecond)
	b.tbl.Info(kJWTRatio, benchkit.FormatFloat(c.Ratio))
	return nil
}

// sessionChain is one worker's session: RefreshSession rotates its refresh
// token, so each worker follows its own chain.
type sessionChain struct {
	account account
	access  string
	refresh string
}

// sessionRun measures RefreshSession and GetCurrentUser, each interleaved
// with grpc.health.v1 Check on identity: row 4.
func (b *bench) sessionRun(ctx context.Context) error {
	if b.onePool == nil {
		return errors.New("no accounts: the login measure did not set them up")
	}
	chains := make([]*sessionChain, b.cfg.clients)
	for w := range chains {
		chains[w] = &sessionChain{}
		if err := b.relogin(ctx, chains[w]); err != nil {
			return err
		}
	}

	health := func(md func(context.Context, *sessionChain) context.Context) benchkit.CallFunc {
		return func(ctx context.Context, w int, _ *rand.Rand) error {
			resp, err := b.shared.pick(w).health.Check(md(ctx, chains[w]), &healthpb.HealthCheckRequest{})
			if err != nil {
				return err
			}
			if resp.GetStatus() != healthpb.HealthCheckResponse_SERVING {
				return fmt.Errorf("health is %v", resp.GetStatus())
			}
			return nil
		}
	}
	// Health checks carry the same metadata as the calls they are compared
	// with, so both send alike; identity ignores it for health.
	asAnonymous := func(ctx context.Context, ch *sessionChain) context.Context { return withTenant(ctx, ch.account.tenant) }
	asUser := func(ctx context.Context, ch *sessionChain) context.Context {
		return withUser(ctx, ch.account.tenant, ch.access)
	}

	refresh := func(ctx context.Context, w int, _ *rand.Rand) error {
		ch := chains[w]
		resp, err := b.shared.pick(w).auth.RefreshSession(asAnonymous(ctx, ch), &identityv1.RefreshSessionRequest{RefreshToken: ch.refresh})
		if err == nil && (resp.GetRefreshToken() == "" || resp.GetAccessToken() == "") {
			err = errors.New("RefreshSession answered without tokens")
		}
		if err != nil {
			// The chain may be broken (a rotated token never received):
			// start a new session, and count the failure.
			if lerr := b.relogin(ctx, ch); lerr != nil {
				b.log.Warn("a session chain could not be restarted", "err", lerr)
			}
			return fmt.Errorf("RefreshSession: %w", err)
		}
		ch.access, ch.refresh = resp.GetAccessToken(), resp.GetRefreshToken()
		return nil
	}
	currentUser := func(ctx context.Context, w int, _ *rand.Rand) error {
		ch := chains[w]
		resp, err := b.shared.pick(w).auth.GetCurrentUser(asUser(ctx, ch), &identityv1.GetCurrentUserRequest{})
		if err != nil {
			return fmt.Errorf("GetCurrentUser: %w", err)
		}
		if got := resp.GetUser().GetEmail(); got != ch.account.email {
			return fmt.Errorf("GetCurrentUser: got user %q, want %q", got, ch.account.email)
		}
		return nil
	}

	// The admin path: a method only tenant admins may call, whose
	// authorization checks the session and the admin's roles now. Its own
	// work is one short read, like most admin methods.
	admins := make([]*sessionChain, b.cfg.clients)
	for w := range admins {
		admins[w] = &sessionChain{}
		if err := b.promote(ctx, admins[w]); err != nil {
			return err
		}
	}
	asAdmin := func(ctx context.Context, w int) context.Context {
		return withUser(ctx, admins[w].account.tenant, admins[w].access)
	}
	adminHealth := func(ctx context.Context, w int, _ *rand.Rand) error {
		_, err := b.shared.pick(w).health.Check(asAdmin(ctx, w), &healthpb.HealthCheckRequest{})
		return err
	}
	adminCall := func(ctx context.Context, w int, _ *rand.Rand) error {
		resp, err := b.shared.pick(w).users.GetTenantSettings(asAdmin(ctx, w), &identityv1.GetTenantSettingsRequest{})
		if err == nil && resp.GetSettings().GetPasswordMinLength() == 0 {
			err = errors.New("answered without settings")
		}
		if err != nil {
			return fmt.Errorf("GetTenantSettings: %w", err)
		}
		return nil
	}

	for _, m := range []struct {
		what                      string
		health                    benchkit.CallFunc
		call                      benchkit.CallFunc
		healthKey, healthCPU      string
		tps, p50, p99, cpu, pgCPU string
		ratio                     string
		target                    float64 // 0: no target, the ratio is information
	}{
		{"RefreshSession", health(asAnonymous), refresh, kHealthRefreshTPS, kHealthCPU,
			kRefreshTPS, kRefreshP50, kRefreshP99, kRefreshCPU, kRefreshPGCPU, kRefreshRatio, minCallVsHealth},
		{"GetCurrentUser", health(asUser), currentUser, kHealthMeTPS, "",
			kMeTPS, kMeP50, kMeP99, kMeCPU, kMePGCPU, kMeRatio, minCallVsHealth},
		{"GetTenantSettings as a tenant admin", adminHealth, adminCall, kHealthAdminTPS, "",
			kAdminTPS, kAdminP50, kAdminP99, kAdminCPU, kAdminPGCPU, kAdminRatio, 0},
	} {
		b.log.Info("measuring health and "+m.what+" on identity, interleaved", "clients", b.cfg.clients,
			"rounds", b.cfg.rounds, "round", b.cfg.duration)
		c, err := benchkit.Interleave(ctx, b.log, benchkit.Schedule{Rounds: b.cfg.rounds, Workers: b.cfg.clients, Duration: b.cfg.duration, Warmup: b.warmup()},
			benchkit.Side{Call: m.health, CPU: []benchkit.CPUMeter{b.identityCPU}}, benchkit.Side{Call: m.call, CPU: []benchkit.CPUMeter{b.identityCPU, b.pgCPU}})
		if err != nil {
			return fmt.Errorf("health and %s: %w", m.what, err)
		}
		for _, s := range []struct {
			series benchkit.Series
			what   string
		}{{c.Base, "health on identity"}, {c.Subject, m.what}} {
			total := s.series.Total()
			if total.Calls == 0 {
				return fmt.Errorf("no %s call succeeded: %w", s.what, total.Err())
			}
			if err := total.Err(); err != nil {
				b.unclean[m.ratio] = true
				b.tbl.Note("%s: %v", s.what, err)
			}
		}
		subject := c.Subject.Total()
		b.tbl.Info(m.healthKey, benchkit.FormatFloat(c.Base.MedianThroughput()))
		b.tbl.Info(m.tps, benchkit.FormatFloat(c.Subject.MedianThroughput()))
		b.tbl.Info(m.p50, benchkit.FormatMillis(subject.Latency.Percentile(0.50)))
		b.tbl.Info(m.p99, benchkit.FormatMillis(subject.Latency.Percentile(0.99)))
		if m.healthCPU != "" {
			b.cpuRow(m.healthCPU, c.Base, 0, time.Microsecond)
		}
		b.cpuRow(m.cpu, c.Subject, 0, time.Microsecond)
		b.cpuRow(m.pgCPU, c.Subject, 1, time.Microsecond)
		if m.target == 0 {
			b.tbl.Info(m.ratio, benchkit.FormatFloat(c.Ratio))
			continue
		}
		b.tbl.Set(m.ratio, benchkit.FormatFloat(c.Ratio), benchkit.Verdict(c.Ratio >= m.target && b.clean(m.ratio)))
	}
	return nil
}

// relogin opens a new session for ch with the next account of the one
// tenant's pool.
func (b *bench) relogin(ctx context.Context, ch *sessionChain) error {
	a, i := b.onePool.take()
	callCtx, cancel := context.WithTimeout(ctx, callTimeout)
	defer cancel()
	resp, err := login(callCtx, b.fromSources.pick(i), a, b.pass)
	if err != nil {
		return err
	}
	ch.account, ch.access, ch.refresh = a, resp.GetAccessToken(), resp.GetRefreshToken()
	return nil
}

// promote opens a session for ch with the next account of the one tenant's
// pool after making the account a tenant admin, as an operator would.
func (b *bench) promote(ctx context.Context, ch *sessionChain) error {
	if err := b.relogin(ctx, ch); err != nil {
		return err
	}
	callCtx, cancel := context.WithTimeout(ctx, callTimeout)
	defer cancel()
	conn := b.shared.pick(0)
	me, err := conn.auth.GetCurrentUser(withUser(callCtx, ch.account.tenant, ch.access), &identityv1.GetCurrentUserRequest{})
	if err != nil {
		return fmt.Errorf("promote %s: GetCurrentUser: %w", ch.account.email, err)
	}
	_, err = conn.users.UpdateUser(withUser(callCtx, ch.account.tenant, b.sec.operator), &identityv1.UpdateUserRequest{
		User:       &identityv1.User{Name: me.GetUser().GetName(), Roles: []string{"admin"}},
		UpdateMask: &fieldmaskpb.FieldMask{Paths: []string{"roles"}},
	})
	if err != nil {
		return fmt.Errorf("promote %s: UpdateUser: %w", ch.account.email, err)
	}
	// A new token, so that identities that read roles from the token (as
	// before the check against the user's roles now) compare alike.
	resp, err := login(callCtx, b.fromSources.pick(0), ch.account, b.pass)
	if err != nil {
		return err
	}
	ch.access, ch.refresh = resp.GetAccessToken(), resp.GetRefreshToken()
	return nil
}
