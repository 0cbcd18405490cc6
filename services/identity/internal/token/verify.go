package token

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// maxTokenBytes bounds the input Verify decodes. Our tokens are a few
// hundred bytes; anything near this is an attempt to make us work.
const maxTokenBytes = 8 << 10

// errUnknownKey is the cause of refusing a token whose kid we do not have.
var errUnknownKey = errors.New("no published signing key has this kid")

// Verify checks an access token and returns its claims. It refuses, with a
// fault.Unauthenticated, any token not signed with EdDSA by one of the
// published keys, of another issuer, lacking a claim, issued or valid only
// in the future, or expired (reason ReasonExpired, the only refusal that
// does not use ReasonInvalid). It does not check the tenant: use
// VerifyForTenant for that.
func (i *Issuer) Verify(token string) (Claims, error) {
	if len(token) > maxTokenBytes {
		return Claims{}, invalid(fmt.Errorf("token has %d bytes, more than %d", len(token), maxTokenBytes))
	}
	now := i.cfg.Now()
	if v, ok := i.verified.get(token); ok {
		// Its signature was good; its key must still be published.
		if key := i.keys.Load().byKID[v.kid]; key != nil && key.publishedAt(now) {
			return i.checkClaims(v.claims, now)
		}
	}
	var c accessClaims
	t, err := i.parser.ParseWithClaims(token, &c, i.verificationKey)
	if err != nil {
		return Claims{}, invalid(err)
	}
	claims, err := i.checkClaims(&c, now)
	if err == nil {
		kid, _ := t.Header["kid"].(string)
		i.verified.put(token, verifiedToken{claims: &c, kid: kid})
	}
	return claims, err
}

// VerifyForTenant is Verify that also refuses, with ReasonWrongTenant, a
// token issued in another tenant than the one the request is for, named by
// its uid: a token of a purged tenant is refused in a new tenant that took
// its slug.
func (i *Issuer) VerifyForTenant(token, tenantUID string) (Claims, error) {
	claims, err := i.Verify(token)
	if err != nil {
		return Claims{}, err
	}
	if tenantUID == "" || claims.TenantUID != tenantUID {
		return Claims{}, wrongTenant()
	}
	return claims, nil
}

// verificationKey is the jwt.Keyfunc: it runs after the parser has checked
// that alg is EdDSA and returns the public key the header's kid names.
func (i *Issuer) verificationKey(t *jwt.Token) (any, error) {
	if t.Method != jwt.SigningMethodEdDSA {
		return nil, fmt.Errorf("alg %q is not EdDSA", t.Method.Alg())
	}
	if typ, _ := t.Header["typ"].(string); typ != tokenType {
		return nil, fmt.Errorf("typ %q is not %q", typ, tokenType)
	}
	// We set no critical extensions, so a token naming one is not ours, and
	// RFC 7515 forbids accepting one we do not understand.
	if _, ok := t.Header["crit"]; ok {
		return nil, errors.New("header has crit")
	}
	kid, _ := t.Header["kid"].(string)
	if kid == "" {
		return nil, errors.New("header has no kid")
	}
	key := i.keys.Load().byKID[kid]
	if key == nil && plausibleKeyID(kid) {
		key = i.reloadForUnknownKey(kid)
	}
	// Access tokens are EdDSA only: an RSA key (the OpenID Provider's)
	// verifies none of them.
	if key == nil || key.alg != AlgEdDSA || !key.publishedAt(i.cfg.Now()) {
		return nil, fmt.Errorf("kid %q: %w", kid, errUnknownKey)
	}
	return key.public, nil
}

// reloadForUnknownKey reloads the keys to find kid, which another replica
// may have just created, and returns it if it is there. It reloads at most
// once per unknownKeyReloadEvery however many made-up kids arrive, and
// callers arriving during a reload wait for it rather than start another.
func (i *Issuer) reloadForUnknownKey(kid string) *signingKey {
	i.reloadMu.Lock()
	defer i.reloadMu.Unlock()
	// Someone else's reload, which we may have waited for, may have found it.
	if key := i.keys.Load().byKID[kid]; key != nil {
		return key
	}
	now := i.cfg.Now()
	if !i.lastUnknownKeyReload.IsZero() && now.Sub(i.lastUnknownKeyReload) < unknownKeyReloadEvery {
		return nil
	}
	i.lastUnknownKeyReload = now
	ctx, cancel := context.WithTimeout(context.Background(), unknownKeyReloadTimeout)
	defer cancel()
	if err := i.reloadLocked(ctx); err != nil {
		i.log.WarnContext(ctx, "reloading signing keys for an unknown kid failed", slog.Any("error", err))
		return nil
	}
	return i.keys.Load().byKID[kid]
}

// checkClaims checks the claims of a token whose signature is good. Age is
// checked last, so that ReasonExpired is only ever said of a token that is
// genuine in every other respect.
func (i *Issuer) checkClaims(c *accessClaims, now time.Time) (Claims, error) {
	switch {
	case c.Issuer != i.cfg.Issuer:
		return Claims{}, invalid(fmt.Errorf("iss %q is not %q", c.Issuer, i.cfg.Issuer))
	case c.Subject == "", c.Tenant == "", c.TenantUID == "", c.Session == "", c.ID == "":
		// Tokens signed before tuid existed end here: they expire within
		// AccessTTL anyway, and a token bound to no tenant uid cannot be
		// told from one of a purged tenant whose slug was taken again.
		return Claims{}, invalid(errors.New("sub, tid, tuid, sid or jti is missing"))
	case c.IssuedAt == nil, c.NotBefore == nil, c.ExpiresAt == nil:
		return Claims{}, invalid(errors.New("iat, nbf or exp is missing"))
	case c.IssuedAt.After(now.Add(ClockLeeway)):
		return Claims{}, invalid(fmt.Errorf("iat %s is in the future", c.IssuedAt.UTC()))
	case c.NotBefore.After(now.Add(ClockLeeway)):
		return Claims{}, invalid(fmt.Errorf("nbf %s is in the future", c.NotBefore.UTC()))
	case !c.ExpiresAt.After(c.IssuedAt.Time):
		return Claims{}, invalid(errors.New("exp is not after iat"))
	case !now.Before(c.ExpiresAt.Add(ClockLeeway)):
		return Claims{}, expired(fmt.Errorf("exp %s has passed", c.ExpiresAt.UTC()))
	}
	// A copy: c may be a cached token's claims, shared by every caller.
	roles := append([]string{}, c.Roles...)
	return Claims{
		Subject:   c.Subject,
		Tenant:    c.Tenant,
		TenantUID: c.TenantUID,
		Session:   c.Session,
		Roles:     roles,
		IssuedAt:  c.IssuedAt.UTC(),
		ExpiresAt: c.ExpiresAt.UTC(),
		ID:        c.ID,
		Issuer:    c.Issuer,
	}, nil
}
