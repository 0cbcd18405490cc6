package main

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"sync/atomic"
	"time"

	"google.golang.org/grpc/metadata"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/types/known/structpb"

	identityv1 "tenantry.dev/gen/tenantry/identity/v1"
	"tenantry.dev/identity/internal/softkey"
	"tenantry.dev/platform/benchkit"
)

// Passkey login ÷ password login (issue 12, target ≥ 5: a passkey login
// checks one ECDSA signature where a password login computes a memory-hard
// hash).
const (
	minPasskeyVsPassword = 5.0
	// passkeyAccounts is how many accounts get a passkey: a passwordless
	// login spends no per-account budget (only the address's and the
	// tenant's, at BeginPasskeyLogin), so they are reused freely.
	passkeyAccounts = 200

	kPasskeyPlainTPS = "passkey-plain-login-tps"
	kPasskeyLoginTPS = "passkey-login-tps"
	kPasskeyLoginP50 = "passkey-login-p50"
	kPasskeyLoginP99 = "passkey-login-p99"
	kPasskeyLoginCPU = "passkey-login-cpu"
	kPasskeyRatio    = "passkey-login-ratio"
)

var passkeyLoginKeys = []string{kPasskeyPlainTPS, kPasskeyLoginTPS, kPasskeyLoginP50, kPasskeyLoginP99, kPasskeyLoginCPU, kPasskeyRatio}

// declarePasskeyMeasures declares the passkey step's rows.
func declarePasskeyMeasures(t *benchkit.Table, cfg config) {
	lc := fmt.Sprintf("%d clients", cfg.loginClients)
	t.Declare(kPasskeyPlainTPS, fmt.Sprintf("password-only Login over gRPC, every tenant, a new account per login, %s (baseline)", lc), "logins/s", "baseline")
	t.Declare(kPasskeyLoginTPS, fmt.Sprintf("BeginPasskeyLogin + FinishPasskeyLogin (a real ES256 assertion) over gRPC, every tenant, %s: throughput", lc), "logins/s", "")
	t.Declare(kPasskeyLoginP50, "passkey login latency p50 (both calls and the client's signature)", "ms", "")
	t.Declare(kPasskeyLoginP99, "passkey login latency p99", "ms", "")
	t.Declare(kPasskeyLoginCPU, "identity CPU per passkey login", "ms", "")
	t.Declare(kPasskeyRatio, "passkey login ÷ password login throughput, interleaved", "ratio", fmt.Sprintf("≥ %.0f", minPasskeyVsPassword))
}

// passkeyHolder is an account with a passkey, held by the bench's software
// authenticator for its tenant's host.
type passkeyHolder struct {
	account
	key  *softkey.Authenticator
	cred *softkey.Credential
}

// passkeyRun measures a login without a password (BeginPasskeyLogin, an
// assertion signed by the account's passkey, FinishPasskeyLogin) against a
// password-only Login, interleaved, with the same concurrency, spread over
// every tenant. The passkeys are registered for this measure through the
// API (a password login, then the registration ceremony) on each tenant's
// host, {tenant}.localhost, the relying party id; the assertions are made
// by internal/softkey, a software authenticator (go-webauthn, which
// verifies them, is the relying party's side only). The client's ECDSA
// signature and JSON run in this process, on the same cores as identity.
func (b *bench) passkeyRun(ctx context.Context) error {
	tenants := make([]string, b.cfg.tenants)
	for i := range tenants {
		tenants[i] = tenantSlug(i)
	}
	rate, err := b.loginRateBound(ctx)
	if err != nil {
		return err
	}
	n := max(accountsFor(rate, b.warmup(), b.measured(), 0), 1)
	plain := newAccountPool(prefixedAccounts("pk-plain", tenants, n))
	holders := prefixedAccounts("pk-key", tenants, min(passkeyAccounts, len(tenants)*4))
	if err := b.signUpAll(ctx, "signing up accounts for the passkey measure", append(append([]account(nil), plain.accounts...), holders...), ""); err != nil {
		return err
	}
	keys, err := b.registerPasskeys(ctx, holders)
	if err != nil {
		return err
	}
	if err := b.waitMailSent(ctx); err != nil {
		return err
	}

	b.log.Info("measuring passkey logins and password-only Login, interleaved",
		"clients", b.cfg.loginClients, "rounds", b.cfg.rounds, "round", b.cfg.duration)
	meters := []benchkit.CPUMeter{b.identityCPU}
	c, err := benchkit.Interleave(ctx, b.log, benchkit.Schedule{Rounds: b.cfg.rounds, Workers: b.cfg.loginClients, Duration: b.cfg.duration, Warmup: b.warmup()},
		benchkit.Side{Call: b.loginLoad(plain), CPU: meters},
		benchkit.Side{Call: b.passkeyLoginLoad(keys), CPU: meters})
	if err != nil {
		return err
	}
	if reused := plain.reused(); reused > 0 {
		b.tbl.Note("Passkey login's baseline: %d password logins reused an account of the %s signed up.", reused, benchkit.FormatCount(len(plain.accounts)))
	}
	for _, m := range []struct {
		s    benchkit.Series
		tps  string
		what string
	}{
		{c.Base, kPasskeyPlainTPS, "password-only Login"},
		{c.Subject, kPasskeyLoginTPS, "passkey login"},
	} {
		total := m.s.Total()
		if total.Calls == 0 {
			return fmt.Errorf("no %s succeeded: %w", m.what, total.Err())
		}
		if err := total.Err(); err != nil {
			b.unclean[kPasskeyRatio] = true
			b.tbl.Note("%s: %v", m.what, err)
		}
		b.tbl.Info(m.tps, benchkit.FormatFloat(m.s.MedianThroughput()))
	}
	pk := c.Subject.Total()
	b.tbl.Info(kPasskeyLoginP50, benchkit.FormatMillis(pk.Latency.Percentile(0.50)))
	b.tbl.Info(kPasskeyLoginP99, benchkit.FormatMillis(pk.Latency.Percentile(0.99)))
	b.cpuRow(kPasskeyLoginCPU, c.Subject, 0, time.Millisecond)
	b.tbl.Set(kPasskeyRatio, benchkit.FormatFloat(c.Ratio), benchkit.Verdict(c.Ratio >= minPasskeyVsPassword && b.clean(kPasskeyRatio)))
	return nil
}

// onTenantHost names an identity call's tenant by its host, as passkeys
// need (the relying party id is the host).
func onTenantHost(ctx context.Context, slug string, accessToken ...string) context.Context {
	ctx = metadata.AppendToOutgoingContext(ctx, "x-tenant-host", slug+".localhost")
	if len(accessToken) > 0 {
		ctx = metadata.AppendToOutgoingContext(ctx, "authorization", "Bearer "+accessToken[0])
	}
	return ctx
}

// registerPasskeys gives every account a passkey (Login, then the
// registration ceremony), made by the software authenticator of its
// tenant's host.
func (b *bench) registerPasskeys(ctx context.Context, accounts []account) ([]passkeyHolder, error) {
	holders := make([]passkeyHolder, len(accounts))
	progress := benchkit.NewProgress(b.log, "registering passkeys", len(accounts))
	r := benchkit.RunCount(ctx, b.cfg.signupClients, len(accounts), func(ctx context.Context, i int) error {
		ctx, cancel := context.WithTimeout(ctx, callTimeout)
		defer cancel()
		a, c := accounts[i], b.fromSources.pick(i)
		resp, err := login(ctx, c, a, b.pass)
		if err != nil {
			return err
		}
		passkeys := identityv1.NewPasskeyServiceClient(c.conn)
		user := onTenantHost(ctx, a.tenant, resp.GetAccessToken())
		begun, err := passkeys.BeginPasskeyRegistration(user, &identityv1.BeginPasskeyRegistrationRequest{})
		if err != nil {
			return fmt.Errorf("begin the passkey registration of %s: %w", a.email, err)
		}
		options, err := protojson.Marshal(begun.GetOptions())
		if err != nil {
			return err
		}
		key := softkey.New("http://" + a.tenant + ".localhost")
		made, cred, err := key.Create(options)
		if err != nil {
			return err
		}
		var credential structpb.Struct
		if err := protojson.Unmarshal(made, &credential); err != nil {
			return err
		}
		if _, err := passkeys.FinishPasskeyRegistration(user, &identityv1.FinishPasskeyRegistrationRequest{
			CeremonyToken: begun.GetCeremonyToken(), Credential: &credential}); err != nil {
			return fmt.Errorf("finish the passkey registration of %s: %w", a.email, err)
		}
		holders[i] = passkeyHolder{account: a, key: key, cred: cred}
		return nil
	}, progress.Report)
	if err := r.Err(); err != nil {
		return nil, fmt.Errorf("passkey registration: %w", err)
	}
	progress.Done(int(r.Calls))
	return holders, nil
}

// passkeyLoginLoad logs in with the holders' passkeys in turn, each login
// from the next source address: BeginPasskeyLogin's challenge, signed by
// the account's passkey, goes to FinishPasskeyLogin, which opens the
// session.
func (b *bench) passkeyLoginLoad(holders []passkeyHolder) benchkit.CallFunc {
	var next atomic.Int64
	return func(ctx context.Context, _ int, _ *rand.Rand) error {
		i := int(next.Add(1) - 1)
		h := holders[i%len(holders)]
		passkeys := identityv1.NewPasskeyServiceClient(b.fromSources.pick(i).conn)
		host := onTenantHost(ctx, h.tenant)
		begun, err := passkeys.BeginPasskeyLogin(host, &identityv1.BeginPasskeyLoginRequest{})
		if err != nil {
			return fmt.Errorf("begin a passkey login in %s: %w", h.tenant, err)
		}
		challenge := begun.GetOptions().GetFields()["challenge"].GetStringValue()
		if challenge == "" {
			return errors.New("BeginPasskeyLogin's options have no challenge")
		}
		assertion, err := h.key.Assert(h.cred, h.tenant+".localhost", challenge)
		if err != nil {
			return err
		}
		var credential structpb.Struct
		if err := protojson.Unmarshal(assertion, &credential); err != nil {
			return err
		}
		resp, err := passkeys.FinishPasskeyLogin(host, &identityv1.FinishPasskeyLoginRequest{CeremonyToken: begun.GetCeremonyToken(), Credential: &credential})
		if err != nil {
			return fmt.Errorf("passkey login of %s in %s: %w", h.email, h.tenant, err)
		}
		if resp.GetUser().GetEmail() != h.email {
			return fmt.Errorf("passkey login of %s logged in %q", h.email, resp.GetUser().GetEmail())
		}
		b.keepToken(resp.GetAccessToken())
		return nil
	}
}
