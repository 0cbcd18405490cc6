package main

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/netip"
	"strings"
	"sync"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"google.golang.org/protobuf/types/known/fieldmaskpb"

	identityv1 "tenantry.dev/gen/tenantry/identity/v1"
	"tenantry.dev/platform/benchkit"
	"tenantry.dev/platform/tracing"
)

// jwksRun measures what validating an access token costs a caller that
// holds the JWKS: row 3. The JWKS of each tenant the tokens are of is
// fetched once over gRPC; the tokens are real ones from the logins
// measured before.
func (b *bench) jwksRun(ctx context.Context) error {
	b.tokensMu.Lock()
	tokens := append([]string(nil), b.tokens...)
	b.tokensMu.Unlock()
	if len(tokens) == 0 {
		return errors.New("no access tokens to verify: no login succeeded before")
	}
	// Each tenant signs with its own keys: the caller holds the JWKS of
	// every tenant whose tokens it checks, one GetJwks each.
	var keys []*identityv1.Jwk
	fetched := map[string]bool{}
	for _, tok := range tokens {
		var c callerClaims
		if _, _, err := jwt.NewParser().ParseUnverified(tok, &c); err != nil {
			return fmt.Errorf("an access token from Login is no JWT: %w", err)
		}
		if fetched[c.Tenant] {
			continue
		}
		fetched[c.Tenant] = true
		callCtx, cancel := context.WithTimeout(withTenant(ctx, c.Tenant), callTimeout)
		jwks, err := b.shared.pick(0).tokens.GetJwks(callCtx, &identityv1.GetJwksRequest{})
		cancel()
		if err != nil {
			return fmt.Errorf("GetJwks of tenant %s: %w", c.Tenant, err)
		}
		keys = append(keys, jwks.GetKeys()...)
	}
	v, err := newJWKSVerifier(keys, benchIssuer)
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
	chains, err := b.sessionChains(ctx, b.cfg.clients)
	if err != nil {
		return err
	}

	// Health checks carry the same metadata as the calls they are compared
	// with.
	asAnonymous := func(ctx context.Context, w int) context.Context { return withTenant(ctx, chains[w].account.tenant) }
	asUser := func(ctx context.Context, w int) context.Context {
		return withUser(ctx, chains[w].account.tenant, chains[w].access)
	}
	currentUserOn := func(conns func() identityConns) benchkit.CallFunc {
		return func(ctx context.Context, w int, _ *rand.Rand) error {
			ch := chains[w]
			resp, err := conns().pick(w).auth.GetCurrentUser(asUser(ctx, w), &identityv1.GetCurrentUserRequest{})
			if err != nil {
				return fmt.Errorf("GetCurrentUser: %w", err)
			}
			if got := resp.GetUser().GetEmail(); got != ch.account.email {
				return fmt.Errorf("GetCurrentUser: got user %q, want %q", got, ch.account.email)
			}
			return nil
		}
	}
	currentUser := currentUserOn(func() identityConns { return b.shared })

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

	restCurrentUser, err := b.restCurrentUserLoad(chains)
	if err != nil {
		return err
	}
	var untraced float64 // GetCurrentUser ÷ health, traces off

	for _, m := range []struct {
		what string
		base benchkit.CallFunc
		call benchkit.CallFunc
		rows comparedRows
	}{
		{"health and RefreshSession on identity", b.healthLoad(asAnonymous), b.refreshSessionLoad(chains), comparedRows{
			baseTPS: kHealthRefreshTPS, baseCPU: kHealthCPU, tps: kRefreshTPS, p50: kRefreshP50, p99: kRefreshP99,
			cpu: kRefreshCPU, pgCPU: kRefreshPGCPU, ratio: kRefreshRatio, target: minRefreshVsHealth,
		}},
		{"health and GetCurrentUser on identity", b.healthLoad(asUser), currentUser, comparedRows{
			baseTPS: kHealthMeTPS, tps: kMeTPS, p50: kMeP50, p99: kMeP99, cpu: kMeCPU, pgCPU: kMePGCPU, ratio: kMeRatio, target: minCallVsHealth,
		}},
		{"health and GetTenantSettings as a tenant admin on identity", b.healthLoad(asAdmin), adminCall, comparedRows{
			baseTPS: kHealthAdminTPS, tps: kAdminTPS, p50: kAdminP50, p99: kAdminP99, cpu: kAdminCPU, pgCPU: kAdminPGCPU, ratio: kAdminRatio,
		}},
		// The same question over REST, which apps ask on every start
		// (issue 13), against the gRPC call itself.
		{"GetCurrentUser over gRPC and GET " + currentUserPath + " over REST", currentUser, restCurrentUser, comparedRows{
			baseTPS: kMeGRPCTPS, baseCPU: kMeGRPCCPU, tps: kMeRESTTPS, p50: kMeRESTP50, p99: kMeRESTP99, cpu: kMeRESTCPU,
			ratio: kMeRESTRatio, target: minRESTMeVsGRPC,
		}},
	} {
		c, err := b.compare(ctx, m.what, b.cfg.duration, m.base, m.call, m.rows)
		if err != nil {
			return err
		}
		if m.rows.ratio == kMeRatio {
			untraced = c.Ratio
		}
	}
	return b.tracedCurrentUser(ctx, asUser, currentUserOn, untraced)
}

// tracedCurrentUser measures what tracing costs a GetCurrentUser on two
// more identities started beside the running one, alike but for tracing:
// one with traces on (the services' default sampling, exported over
// OTLP/HTTP to a sink in this program), one with traces off, /metrics on
// in both:
//
//   - the verdict: GetCurrentUser on the traced identity ÷ on the untraced
//     one, interleaved in slices of at most a second, run first, while
//     both have the same history; each identity's CPU per call is read
//     over the whole interleave (the traced one's background export
//     counts). Both answer the same calls with the same
//     access tokens from the same database, so a change of the machine's
//     load during the run falls on both sides alike. The untraced side is
//     a process started with the traced one, not the identity the rest of
//     the run used: that one had served minutes of other loads (and, after
//     the tenants step, logs at info), and a control run of this measure
//     with both sides untraced showed it 1.6-3 µs per call dearer or
//     cheaper than a fresh process; comparing two ratios to health taken
//     minutes apart (what this measure did first) moved by ±8-20%.
//   - for information, afterwards, GetCurrentUser ÷ health on the traced
//     identity, and its change from untraced (the same comparison, earlier
//     in the run).
func (b *bench) tracedCurrentUser(ctx context.Context, asUser func(context.Context, int) context.Context, currentUserOn func(func() identityConns) benchkit.CallFunc, untraced float64) error {
	sink, err := benchkit.StartOTLPSink()
	if err != nil {
		return err
	}
	defer sink.Close()
	env := append(sink.Env(), "OTEL_SERVICE_NAME=identity-bench")
	if name, arg, _ := strings.Cut(b.cfg.tracesSampler, "="); name != "" {
		env = append(env, tracing.EnvSampler+"="+name, tracing.EnvSamplerArg+"="+arg)
		b.tbl.Note("tracing measure: the traced identity samples with %s=%s %s=%s", tracing.EnvSampler, name, tracing.EnvSamplerArg, arg)
	}
	traced, err := b.sideIdentity(ctx, "traced", env...)
	if err != nil {
		return err
	}
	defer traced.stop()
	plain, err := b.sideIdentity(ctx, "untraced")
	if err != nil {
		return err
	}
	defer plain.stop()
	onTraced := func() identityConns { return traced.conns }
	untracedSide := benchkit.Side{Call: currentUserOn(func() identityConns { return plain.conns })}
	tracedSide := benchkit.Side{Call: currentUserOn(onTraced)}

	// The A/B first, while both processes have the same history (started
	// together, nothing served yet but the warm-up). Each process's CPU is
	// read over the whole interleave, not around its own slices: the
	// traced one exports its spans in the background, also during the
	// untraced one's slices, and that belongs to tracing's cost. Each
	// process serves only its own slices, so the whole-interleave reading
	// is its work and nothing else's.
	cpuBefore := [2]time.Duration{}
	cpuMeters := [2]benchkit.CPUMeter{plain.CPUTime, traced.CPUTime}
	for i, m := range cpuMeters {
		if cpuBefore[i], err = m(); err != nil {
			return fmt.Errorf("read identity's CPU: %w", err)
		}
	}
	ab, err := b.compareSides(ctx, "GetCurrentUser on two identities started alike, traces off and on, side by side", b.cfg.duration,
		untracedSide, tracedSide, comparedRows{
			baseTPS: kUntracedMeTPS, tps: kTracedMeABTPS, ratio: kTracedMeVsUntraced,
		})
	if err != nil {
		return err
	}
	for i, row := range []string{kUntracedMeCPU, kTracedMeCPU} {
		after, err := cpuMeters[i]()
		if err != nil {
			return fmt.Errorf("read identity's CPU: %w", err)
		}
		series := []benchkit.Series{ab.Base, ab.Subject}[i]
		if calls := series.Total().Calls; calls > 0 {
			b.tbl.Info(row, benchkit.FormatFloat(float64((after-cpuBefore[i]).Nanoseconds())/float64(calls)/1e3))
		}
	}
	// For information: GetCurrentUser ÷ health on the traced identity, and
	// its change from the untraced ratio measured earlier in the run.
	c, err := b.compareSides(ctx, "health and GetCurrentUser on a second identity, traces on", b.cfg.duration,
		benchkit.Side{Call: healthLoadOn(onTraced, asUser), CPU: []benchkit.CPUMeter{traced.CPUTime, b.pgCPU}},
		benchkit.Side{Call: currentUserOn(onTraced), CPU: []benchkit.CPUMeter{traced.CPUTime, b.pgCPU}}, comparedRows{
			baseTPS: kTracedHealthMeTPS, tps: kTracedMeTPS, ratio: kTracedMeRatio,
		})
	if err != nil {
		return err
	}
	if untraced > 0 {
		b.tbl.Info(kTracedHealthChange, fmt.Sprintf("%+.1f", (c.Ratio/untraced-1)*100))
	}
	// Spans are exported in batches every 5 s: stopping identity flushes them.
	traced.stop()
	requests, bytes := sink.Received()
	clean := requests > 0
	if clean {
		b.tbl.Note("GetCurrentUser with traces on: the OTLP sink received %d export requests, %.1f MiB of spans", requests, float64(bytes)/(1<<20))
	} else {
		b.tbl.Note("GetCurrentUser with traces on: the OTLP sink received nothing, so the spans were not exported")
	}
	change := ab.Ratio - 1
	b.tbl.Set(kTracingMeChange, fmt.Sprintf("%+.1f", change*100), benchkit.Verdict(clean && b.clean(kTracedMeVsUntraced) && change > -maxTracingCost))
	return nil
}

// sideIdentity is one more identity beside the running one, on the same
// database and registry, with its own connections; stop is idempotent.
type sideIdentity struct {
	*identityProcess
	conns identityConns
	stop  func()
}

func (b *bench) sideIdentity(ctx context.Context, what string, env ...string) (*sideIdentity, error) {
	p, err := startIdentity(ctx, b.cfg.identityBin, b.dbURL, b.registry.Addr(), "warn", b.sec, b.stderr, env...)
	if err != nil {
		return nil, fmt.Errorf("start a %s identity: %w", what, err)
	}
	s := &sideIdentity{identityProcess: p}
	var once sync.Once
	s.stop = func() {
		once.Do(func() {
			if s.conns != nil {
				s.conns.close()
			}
			if err := p.Stop(); err != nil {
				b.log.Warn("stopping the "+what+" identity", "err", err)
			}
		})
	}
	if s.conns, err = dialIdentity(p.Addr(), make([]netip.Addr, b.cfg.conns)); err != nil {
		s.stop()
		return nil, err
	}
	return s, nil
}

// refreshSessionLoad is RefreshSession over gRPC, worker w following the
// session chain chains[w]: RefreshSession rotates the refresh token, so
// each worker keeps its own.
func (b *bench) refreshSessionLoad(chains []*sessionChain) benchkit.CallFunc {
	return func(ctx context.Context, w int, _ *rand.Rand) error {
		ch := chains[w]
		resp, err := b.shared.pick(w).auth.RefreshSession(withTenant(ctx, ch.account.tenant), &identityv1.RefreshSessionRequest{RefreshToken: ch.refresh})
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
}

// sessionChains opens n sessions with the one tenant's accounts, one per
// worker.
func (b *bench) sessionChains(ctx context.Context, n int) ([]*sessionChain, error) {
	chains := make([]*sessionChain, n)
	for w := range chains {
		chains[w] = &sessionChain{}
		if err := b.relogin(ctx, chains[w]); err != nil {
			return nil, err
		}
	}
	return chains, nil
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
