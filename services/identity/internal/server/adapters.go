package server

import (
	"context"
	"net/url"
	"strings"

	"tenantry.dev/identity/internal/ratelimit"
	"tenantry.dev/kit/tenancy"
)

// links builds the URLs of a tenant's pages for emails from a template
// such as "http://{tenant}.localhost:8080".
type links struct{ template string }

func (l links) URL(t tenancy.Tenant, path, token string) string {
	u := strings.TrimSuffix(strings.ReplaceAll(l.template, "{tenant}", t.Slug), "/") + path
	if token != "" {
		u += "?token=" + url.QueryEscape(token)
	}
	return u
}

// limits applies the rate limit presets to account.Manager's needs.
type limits struct {
	l *ratelimit.Limiter
	// signUpsPerAddress is the configured sign-ups an hour per client
	// address (config.Config.SignUpsPerAddressPerHour).
	signUpsPerAddress int
}

func (x limits) check(ctx context.Context, what string, checks []ratelimit.Check) error {
	d, err := x.l.AllowAll(ctx, checks...)
	if err != nil {
		return err
	}
	if !d.Allowed {
		return ratelimit.Exceeded(d, what)
	}
	return nil
}

func (x limits) Login(ctx context.Context, tenant, account, ip string, tenantPerSecond int) error {
	return x.check(ctx, "login attempts", ratelimit.LoginChecks(tenant, account, ip, tenantPerSecond))
}

func (x limits) SecondFactor(ctx context.Context, tenant, userID, ip string, tenantPerSecond int) error {
	return x.check(ctx, "second factor attempts", ratelimit.SecondFactorChecks(tenant, userID, ip, tenantPerSecond))
}

func (x limits) LoginCode(ctx context.Context, tenant, account, ip string) error {
	return x.check(ctx, "login code requests", ratelimit.LoginCodeChecks(tenant, account, ip))
}

func (x limits) PasskeyLogin(ctx context.Context, tenant, ip string, tenantPerSecond int) error {
	return x.check(ctx, "passkey logins", ratelimit.PasskeyLoginChecks(tenant, ip, tenantPerSecond))
}

func (x limits) PasswordReset(ctx context.Context, tenant, account, ip string) error {
	return x.check(ctx, "password reset requests", ratelimit.PasswordResetChecks(tenant, account, ip))
}

func (x limits) Verification(ctx context.Context, tenant, account, ip string) error {
	return x.check(ctx, "verification emails", ratelimit.VerificationChecks(tenant, account, ip))
}

func (x limits) SignUp(ctx context.Context, tenant, account, ip string, tenantPerSecond int) error {
	return x.check(ctx, "sign-ups", ratelimit.SignUpChecks(tenant, account, ip, x.signUpsPerAddress, tenantPerSecond))
}
