package main

import (
	"context"
	"crypto"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"errors"
	"fmt"
	"math"
	mrand "math/rand/v2"
	"net/http"
	"net/url"
	"runtime"
	"slices"
	"sync/atomic"
	"time"

	identityv1 "tenantry.dev/gen/tenantry/identity/v1"
	"tenantry.dev/platform/benchkit"
)

const (
	// oauthRoundLimit bounds one round of each OpenID Provider load: each
	// code exchanged needs a code prepared beforehand, which costs more
	// than the exchange, and the run has a time budget.
	oauthRoundLimit = 2 * time.Second
	// codeMargin over-provisions codes for a faster moment than the rate
	// the pool was sized from.
	codeMargin = 1.5
	// probeCodes are exchanged to size the pool; maxCodes bounds it.
	probeCodes = 200
	maxCodes   = 60000
	// serviceScope is the scope of the tenant's own the service clients
	// are allowed.
	serviceScope = "bench:read"
)

// errOutOfCodes is a code exchange that found no prepared code left.
var errOutOfCodes = errors.New("no prepared authorization code left (the pool was sized from a slower exchange rate)")

// oauthFixture is what the OpenID Provider measures share: the one tenant's
// host, its apps and logged-in browsers.
type oauthFixture struct {
	th  *tenantHTTP
	api *http.Client // the apps' keep-alive client of the token endpoint
	// web and webEd are confidential first-party clients with
	// authorization_code and refresh_token, scopes openid and
	// offline_access; web signs with the default RS256, webEd with EdDSA.
	web, webEd oauthApp
	// service and serviceEd are client_credentials clients, RS256 and
	// EdDSA.
	service, serviceEd oauthApp
	browsers           []*browser // logged in on the tenant's login page
}

// oauthRun measures the one tenant's OpenID Provider over HTTP: the token
// endpoint's grants against RefreshSession over gRPC, client_credentials
// per core, and discovery and the JWKS against grpc.health.v1 Check.
func (b *bench) oauthRun(ctx context.Context) error {
	if b.onePool == nil {
		return errors.New("no accounts: the login measure did not set them up")
	}
	f, err := b.oauthSetUp(ctx)
	if err != nil {
		return err
	}
	defer f.api.CloseIdleConnections()
	if err := b.signaturesRun(ctx); err != nil {
		return err
	}
	for _, step := range []func(context.Context, *oauthFixture) error{
		b.codeExchangeRun, b.refreshGrantRun, b.clientCredentialsRun, b.servedFromMemoryRun,
	} {
		if err := step(ctx, f); err != nil {
			return err
		}
	}
	return nil
}

// oauthRound is the length of one round of each OpenID Provider load.
func (b *bench) oauthRound() time.Duration { return min(b.cfg.duration, oauthRoundLimit) }

// oauthSetUp registers the apps through OAuthClientService with the
// operator's token, checks discovery and the JWKS once, and logs -clients
// browsers in on the tenant's login page.
func (b *bench) oauthSetUp(ctx context.Context) (*oauthFixture, error) {
	tenant := tenantSlug(oneTenantIndex)
	th, err := newTenantHTTP(b.identity.httpAddr, tenant)
	if err != nil {
		return nil, err
	}
	f := &oauthFixture{th: th, api: th.client(2 * b.cfg.clients)}
	web := func(name string, alg identityv1.OAuthClient_SigningAlgorithm) *identityv1.OAuthClient {
		return &identityv1.OAuthClient{
			DisplayName: name, Type: identityv1.OAuthClient_TYPE_CONFIDENTIAL, FirstParty: true,
			RedirectUris: []string{callbackURI},
			GrantTypes: []identityv1.OAuthClient_GrantType{
				identityv1.OAuthClient_GRANT_TYPE_AUTHORIZATION_CODE, identityv1.OAuthClient_GRANT_TYPE_REFRESH_TOKEN,
			},
			AllowedScopes:            []string{"openid", "offline_access"},
			IdTokenSignedResponseAlg: alg,
		}
	}
	service := func(name string, alg identityv1.OAuthClient_SigningAlgorithm) *identityv1.OAuthClient {
		return &identityv1.OAuthClient{
			DisplayName: name, Type: identityv1.OAuthClient_TYPE_CONFIDENTIAL,
			GrantTypes:               []identityv1.OAuthClient_GrantType{identityv1.OAuthClient_GRANT_TYPE_CLIENT_CREDENTIALS},
			AllowedScopes:            []string{serviceScope},
			IdTokenSignedResponseAlg: alg,
		}
	}
	for _, r := range []struct {
		app    *oauthApp
		client *identityv1.OAuthClient
	}{
		{&f.web, web("Bench Web", identityv1.OAuthClient_SIGNING_ALGORITHM_UNSPECIFIED)},
		{&f.webEd, web("Bench Web EdDSA", identityv1.OAuthClient_SIGNING_ALGORITHM_EDDSA)},
		{&f.service, service("Bench Service", identityv1.OAuthClient_SIGNING_ALGORITHM_UNSPECIFIED)},
		{&f.serviceEd, service("Bench Service EdDSA", identityv1.OAuthClient_SIGNING_ALGORITHM_EDDSA)},
	} {
		if *r.app, err = b.registerOAuthClient(ctx, tenant, r.client); err != nil {
			return nil, err
		}
	}

	// What a relying party reads first, checked once: the measures then
	// only check the status and that there is a body.
	callCtx, cancel := context.WithTimeout(ctx, callTimeout)
	defer cancel()
	var disc struct {
		Issuer    string `json:"issuer"`
		Token     string `json:"token_endpoint"`
		JWKS      string `json:"jwks_uri"`
		Authorize string `json:"authorization_endpoint"`
	}
	if err := th.getJSON(callCtx, f.api, discoveryPath, &disc); err != nil {
		return nil, err
	}
	if disc.Issuer != th.issuer || disc.Token != th.issuer+tokenPath || disc.JWKS != th.issuer+keysPath || disc.Authorize != th.issuer+authorizePath {
		return nil, fmt.Errorf("discovery at %s names issuer %q, token %q, JWKS %q, authorize %q", th.issuer, disc.Issuer, disc.Token, disc.JWKS, disc.Authorize)
	}
	// Access tokens are EdDSA for every client; a tenant's RSA key is made
	// by its first RS256 ID token, which the code exchanges below sign.
	// The JWKS read here has the Ed25519 key at least.
	if _, err := f.th.token(callCtx, f.api, f.service, url.Values{"grant_type": {"client_credentials"}, "scope": {serviceScope}}); err != nil {
		return nil, fmt.Errorf("a first client_credentials grant: %w", err)
	}
	var jwks struct {
		Keys []struct {
			Alg string `json:"alg"`
		} `json:"keys"`
	}
	if err := th.getJSON(callCtx, f.api, keysPath, &jwks); err != nil {
		return nil, err
	}
	var algs []string
	for _, k := range jwks.Keys {
		algs = append(algs, k.Alg)
	}
	if !slices.Contains(algs, "EdDSA") {
		return nil, fmt.Errorf("the JWKS has keys %v, no EdDSA key", algs)
	}

	// Each browser logs in once on the login page (a login: argon2id), on
	// its first authorization; every later one is silent (SSO).
	b.log.Info("logging browsers in on the tenant's login page", "browsers", b.cfg.clients)
	for range b.cfg.clients {
		a, _ := b.onePool.take()
		br, err := th.newBrowser(a)
		if err != nil {
			return nil, err
		}
		pc, err := br.authorize(callCtx, f.web, b.pass)
		if err != nil {
			return nil, err
		}
		resp, err := th.token(callCtx, f.api, f.web, pc.exchangeForm())
		if err != nil {
			return nil, err
		}
		if resp.IDToken == "" || resp.RefreshToken == "" {
			return nil, errors.New("a code exchange answered without an ID token or a refresh token")
		}
		f.browsers = append(f.browsers, br)
	}
	return f, nil
}

// signaturesRun measures RS256 (RSA-2048) and EdDSA signatures in this
// process, one goroutine, interleaved: the floor under every token signed
// with each. A CPU-bound loop needs no long rounds.
func (b *bench) signaturesRun(ctx context.Context) error {
	rsaKey, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		return err
	}
	_, edKey, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return err
	}
	// About the size of a token's header and claims.
	input := make([]byte, 600)
	_, _ = rand.Read(input)
	edSign := func(context.Context, int, *mrand.Rand) error {
		_ = ed25519.Sign(edKey, input)
		return nil
	}
	rsaSign := func(context.Context, int, *mrand.Rand) error {
		sum := sha256.Sum256(input)
		_, err := rsa.SignPKCS1v15(nil, rsaKey, crypto.SHA256, sum[:])
		return err
	}
	b.log.Info("measuring RS256 and EdDSA signatures in this process, interleaved")
	c, err := benchkit.Interleave(ctx, b.log, benchkit.Schedule{Rounds: b.cfg.rounds, Workers: 1, Duration: min(b.cfg.duration, time.Second), Warmup: b.warmup()},
		benchkit.Side{Call: edSign, CPU: []benchkit.CPUMeter{benchkit.SelfCPUTime}},
		benchkit.Side{Call: rsaSign, CPU: []benchkit.CPUMeter{benchkit.SelfCPUTime}})
	if err != nil {
		return err
	}
	b.tbl.Info(kEdSignTPS, benchkit.FormatFloat(c.Base.MedianThroughput()))
	b.tbl.Info(kRSASignTPS, benchkit.FormatFloat(c.Subject.MedianThroughput()))
	return nil
}

// codePool hands out prepared codes, each once.
type codePool struct {
	codes []preparedCode
	next  atomic.Int64
}

func (p *codePool) take() (preparedCode, bool) {
	i := p.next.Add(1) - 1
	if i >= int64(len(p.codes)) {
		return preparedCode{}, false
	}
	return p.codes[i], true
}

// left returns how many codes have not been taken.
func (p *codePool) left() int { return max(0, len(p.codes)-int(p.next.Load())) }

// prepareCodes has the browsers authorize app n times, -clients at once,
// and returns the codes, each with its PKCE verifier.
func (b *bench) prepareCodes(ctx context.Context, f *oauthFixture, app oauthApp, n int) ([]preparedCode, error) {
	codes := make([]preparedCode, n)
	progress := benchkit.NewProgress(b.log, "preparing authorization codes", n)
	r := benchkit.RunCount(ctx, b.cfg.clients, n, func(ctx context.Context, i int) error {
		ctx, cancel := context.WithTimeout(ctx, callTimeout)
		defer cancel()
		var err error
		codes[i], err = f.browsers[i%len(f.browsers)].authorize(ctx, app, b.pass)
		return err
	}, progress.Report)
	progress.Done(int(r.Calls))
	if err := r.Err(); err != nil {
		return nil, fmt.Errorf("prepare authorization codes: %w", err)
	}
	return codes, nil
}

// exchangeLoad exchanges the pool's codes at the token endpoint, one each.
func (f *oauthFixture) exchangeLoad(pool *codePool) benchkit.CallFunc {
	return func(ctx context.Context, _ int, _ *mrand.Rand) error {
		pc, ok := pool.take()
		if !ok {
			return errOutOfCodes
		}
		resp, err := f.th.token(ctx, f.api, pc.app, pc.exchangeForm())
		if err == nil && (resp.IDToken == "" || resp.RefreshToken == "") {
			err = errors.New("a code exchange answered without an ID token or a refresh token")
		}
		return err
	}
}

// codesFor is how many codes exchanges at rate per second need for the
// given time, with codeMargin, between min and maxCodes.
func codesFor(rate float64, d time.Duration, least int) int {
	n := int(math.Ceil(rate * d.Seconds() * codeMargin))
	return min(max(n, least), maxCodes)
}

// codeExchangeRun measures authorization_code exchanges at the token
// endpoint against RefreshSession over gRPC. Codes are prepared before
// the timed part (authorize → login step → code, by logged-in browsers);
// only the POSTs to /oauth/token are timed.
func (b *bench) codeExchangeRun(ctx context.Context, f *oauthFixture) error {
	// The pool is sized from the exchange rate of a first batch, alone.
	probe, err := b.prepareCodes(ctx, f, f.web, max(probeCodes, 4*b.cfg.clients))
	if err != nil {
		return err
	}
	pool := &codePool{codes: probe}
	r := benchkit.RunCount(ctx, b.cfg.clients, len(probe), func(ctx context.Context, _ int) error {
		return f.exchangeLoad(pool)(ctx, 0, nil)
	}, nil)
	if err := r.Err(); err != nil {
		return fmt.Errorf("exchange the first codes: %w", err)
	}
	round := b.oauthRound()
	need := codesFor(r.Throughput(), b.warmup()+time.Duration(b.cfg.rounds)*round, 4*b.cfg.clients)
	b.log.Info("sized the code pool", "exchanges_per_second", benchkit.FormatFloat(r.Throughput()), "codes", need)
	codes, err := b.prepareCodes(ctx, f, f.web, need)
	if err != nil {
		return err
	}
	if need == maxCodes {
		b.tbl.Note("authorization_code exchange: the code pool was capped at %s codes.", benchkit.FormatCount(maxCodes))
	}
	pool = &codePool{codes: codes}

	chains, err := b.sessionChains(ctx, b.cfg.clients)
	if err != nil {
		return err
	}
	_, err = b.compare(ctx, "RefreshSession over gRPC and authorization_code exchanges at /oauth/token", round,
		b.refreshSessionLoad(chains), f.exchangeLoad(pool), comparedRows{
			baseTPS: kCodeBaseTPS, tps: kCodeTPS, p50: kCodeP50, p99: kCodeP99, cpu: kCodeCPU, pgCPU: kCodePGCPU,
			ratio: kCodeRatio, target: minOAuthVsRefreshSession,
		})
	if err != nil {
		return err
	}
	b.tbl.Note("authorization_code exchange: %s codes prepared by %d logged-in browsers; %s left unused.",
		benchkit.FormatCount(len(codes)), len(f.browsers), benchkit.FormatCount(pool.left()))
	return nil
}

// grantChain is one worker's grant: the refresh_token grant rotates its
// refresh token, so each worker follows its own chain.
type grantChain struct {
	app     oauthApp
	browser *browser
	refresh string
}

// restart opens a new grant for ch: an authorization and a code exchange.
func (f *oauthFixture) restart(ctx context.Context, ch *grantChain, password string) error {
	ctx, cancel := context.WithTimeout(ctx, callTimeout)
	defer cancel()
	pc, err := ch.browser.authorize(ctx, ch.app, password)
	if err != nil {
		return err
	}
	resp, err := f.th.token(ctx, f.api, ch.app, pc.exchangeForm())
	if err != nil {
		return err
	}
	if resp.RefreshToken == "" {
		return errors.New("a code exchange answered without a refresh token")
	}
	ch.refresh = resp.RefreshToken
	return nil
}

// refreshLoad is the refresh_token grant, worker w rotating chains[w].
func (b *bench) refreshLoad(f *oauthFixture, chains []*grantChain) benchkit.CallFunc {
	return func(ctx context.Context, w int, _ *mrand.Rand) error {
		ch := chains[w]
		resp, err := f.th.token(ctx, f.api, ch.app, url.Values{"grant_type": {"refresh_token"}, "refresh_token": {ch.refresh}})
		if err == nil && (resp.RefreshToken == "" || resp.IDToken == "") {
			err = errors.New("a refresh answered without a new refresh token or an ID token")
		}
		if err != nil {
			// The chain may be broken (a rotated token never received):
			// open a new grant, and count the failure.
			if rerr := f.restart(ctx, ch, b.pass); rerr != nil {
				b.log.Warn("a grant chain could not be restarted", "err", rerr)
			}
			return err
		}
		ch.refresh = resp.RefreshToken
		return nil
	}
}

// refreshGrantRun measures the refresh_token grant at the token endpoint
// against RefreshSession over gRPC: with the RS256 client (the target) and
// with the same client registered for EdDSA (what RSA costs).
func (b *bench) refreshGrantRun(ctx context.Context, f *oauthFixture) error {
	for _, m := range []struct {
		what string
		app  oauthApp
		rows comparedRows
	}{
		{"refresh_token grants at /oauth/token (RS256 client)", f.web, comparedRows{
			baseTPS: kGrantBaseTPS, tps: kGrantTPS, p50: kGrantP50, p99: kGrantP99, cpu: kGrantCPU, pgCPU: kGrantPGCPU,
			ratio: kGrantRatio, target: minOAuthVsRefreshSession,
		}},
		{"refresh_token grants at /oauth/token (EdDSA client)", f.webEd, comparedRows{
			baseTPS: kGrantEdBaseTPS, tps: kGrantEdTPS, cpu: kGrantEdCPU, pgCPU: kGrantEdPGCPU, ratio: kGrantEdRatio,
		}},
	} {
		grants := make([]*grantChain, b.cfg.clients)
		for w := range grants {
			grants[w] = &grantChain{app: m.app, browser: f.browsers[w%len(f.browsers)]}
			if err := f.restart(ctx, grants[w], b.pass); err != nil {
				return err
			}
		}
		chains, err := b.sessionChains(ctx, b.cfg.clients)
		if err != nil {
			return err
		}
		if _, err := b.compare(ctx, "RefreshSession over gRPC and "+m.what, b.oauthRound(),
			b.refreshSessionLoad(chains), b.refreshLoad(f, grants), m.rows); err != nil {
			return err
		}
	}
	return nil
}

// clientCredentialsLoad is the client_credentials grant for app.
func (f *oauthFixture) clientCredentialsLoad(app oauthApp) benchkit.CallFunc {
	form := url.Values{"grant_type": {"client_credentials"}, "scope": {serviceScope}}
	return func(ctx context.Context, _ int, _ *mrand.Rand) error {
		_, err := f.th.token(ctx, f.api, app, form)
		return err
	}
}

// clientCredentialsRun measures client_credentials grants with the RS256
// client (Keycloak signs RS256 by default too), interleaved with the same
// grant for an EdDSA client, and reports them per core of this machine.
func (b *bench) clientCredentialsRun(ctx context.Context, f *oauthFixture) error {
	c, err := b.compare(ctx, "client_credentials grants, EdDSA and RS256 clients", b.oauthRound(),
		f.clientCredentialsLoad(f.serviceEd), f.clientCredentialsLoad(f.service), comparedRows{
			baseTPS: kCCEdTPS, baseCPU: kCCEdCPU, tps: kCCTPS, p50: kCCP50, p99: kCCP99, cpu: kCCCPU, pgCPU: kCCPGCPU,
			ratio: kCCRatio,
		})
	if err != nil {
		return err
	}
	// Per core: everything (identity, PostgreSQL, this program's clients)
	// shares the machine's cores, so the total is divided by all of them.
	cores := float64(runtime.NumCPU())
	perCore := c.Subject.MedianThroughput() / cores
	b.tbl.Set(kCCPerCore, benchkit.FormatFloat(perCore), benchkit.Verdict(perCore >= minCCPerCore && b.clean(kCCRatio)))
	b.tbl.Info(kCCEdPerCore, benchkit.FormatFloat(c.Base.MedianThroughput()/cores))
	if cpu, ok := c.Subject.CPUPerCall(0); ok && cpu > 0 {
		b.tbl.Info(kCCOwnCore, benchkit.FormatFloat(float64(time.Second)/float64(cpu)))
	} else {
		b.tbl.Skip("identity's CPU time could not be read from /proc (see the warnings on stderr)", kCCOwnCore)
	}
	return nil
}

// servedFromMemoryRun measures discovery, the JWKS and, for the HTTP
// transport's own share, the gateway's /healthz, each over keep-alive
// HTTP/1.1 against grpc.health.v1 Check over gRPC.
func (b *bench) servedFromMemoryRun(ctx context.Context, f *oauthFixture) error {
	tenant := tenantSlug(oneTenantIndex)
	health := b.healthLoad(func(ctx context.Context, _ int) context.Context { return withTenant(ctx, tenant) })
	get := func(path string) benchkit.CallFunc {
		return func(ctx context.Context, _ int, _ *mrand.Rand) error {
			_, err := f.th.get(ctx, f.api, path)
			return err
		}
	}
	for _, m := range []struct {
		what string
		path string
		rows comparedRows
	}{
		{"grpc health and discovery over HTTP", discoveryPath, comparedRows{
			baseTPS: kHealthDiscTPS, baseCPU: kOIDCHealthCPU, tps: kDiscTPS, p50: kDiscP50, p99: kDiscP99, cpu: kDiscCPU,
			ratio: kDiscRatio, target: minServedVsHealth,
		}},
		{"grpc health and the JWKS over HTTP", keysPath, comparedRows{
			baseTPS: kHealthKeysTPS, tps: kKeysTPS, p50: kKeysP50, p99: kKeysP99, cpu: kKeysCPU,
			ratio: kKeysRatio, target: minServedVsHealth,
		}},
		{"grpc health and the gateway's /healthz over HTTP", healthzPath, comparedRows{
			baseTPS: kHealthHealthzTPS, tps: kHealthzTPS, cpu: kHealthzCPU, ratio: kHealthzRatio,
		}},
	} {
		if _, err := b.compare(ctx, m.what, b.oauthRound(), health, get(m.path), m.rows); err != nil {
			return err
		}
	}
	// The tenant's login configuration, from memory kept current by the
	// schemas' announcements, against the same HTTP server's /healthz.
	_, err := b.compare(ctx, "/healthz and /v1/auth/config over HTTP", b.oauthRound(), get(healthzPath), get(authConfigPath), comparedRows{
		baseTPS: kConfigBaseTPS, tps: kConfigTPS, p50: kConfigP50, p99: kConfigP99, cpu: kConfigCPU, pgCPU: kConfigPGCPU,
		ratio: kConfigRatio, target: minServedVsHealth,
	})
	return err
}
