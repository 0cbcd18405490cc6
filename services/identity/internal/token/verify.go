package token

import (
	"errors"
	"fmt"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// maxTokenBytes bounds the input Verify decodes. Our tokens are a few
// hundred bytes; anything near this is an attempt to make us work.
const maxTokenBytes = 8 << 10

// errUnknownKey is the cause of refusing a token whose kid we do not have.
var errUnknownKey = errors.New("no published signing key of the token's tenant has this kid")

// errOtherTenant is the cause of refusing, in VerifyForTenant, a token
// that names another tenant than the request's.
var errOtherTenant = errors.New("the token names another tenant")

// Verify checks an access token and returns its claims. It refuses, with a
// fault.Unauthenticated, any token not signed with EdDSA by one of the
// published keys of the tenant its tuid names, of another issuer, lacking
// a claim, issued or valid only in the future, or expired (reason
// ReasonExpired, the only refusal that does not use ReasonInvalid). It
// does not check the tenant against the request's: use VerifyForTenant
// for that wherever the request's tenant is known. The tuid, read before
// the signature is checked, only picks the keys; the signature then
// proves it. A tenant this replica has not used yet costs a read of its
// keys, so callers that anyone can reach with a made-up token should use
// VerifyForTenant, which reads only the keys of the request's tenant.
func (i *Issuer) Verify(token string) (Claims, error) {
	return i.verify(token, "")
}

// VerifyForTenant is Verify that also refuses, with ReasonWrongTenant, a
// token issued in another tenant than the one the request is for, named by
// its uid: a token of a purged tenant is refused in a new tenant that took
// its slug. A token whose tuid names another tenant is refused so before
// any key is looked up, genuine or not; only the request's tenant's keys
// are ever read.
func (i *Issuer) VerifyForTenant(token, tenantUID string) (Claims, error) {
	if tenantUID == "" {
		return Claims{}, wrongTenant()
	}
	claims, err := i.verify(token, tenantUID)
	if err != nil {
		return Claims{}, err
	}
	if claims.TenantUID != tenantUID {
		return Claims{}, wrongTenant()
	}
	return claims, nil
}

// verify does Verify's work; a non-empty tenantUID is the request's
// tenant, whose tokens alone are accepted.
func (i *Issuer) verify(token, tenantUID string) (Claims, error) {
	if len(token) > maxTokenBytes {
		return Claims{}, invalid(fmt.Errorf("token has %d bytes, more than %d", len(token), maxTokenBytes))
	}
	now := i.cfg.Now()
	if v, ok := i.verified.get(token); ok {
		if tenantUID != "" && v.claims.TenantUID != tenantUID {
			return Claims{}, wrongTenant()
		}
		// Its signature was good; its key must still be published.
		if key := i.publishedKey(v.tenantUID, v.kid, now); key != nil {
			return i.checkClaims(v.claims, now)
		}
	}
	var c accessClaims
	t, err := i.parser.ParseWithClaims(token, &c, func(t *jwt.Token) (any, error) {
		return i.verificationKey(t, &c, tenantUID)
	})
	if errors.Is(err, errOtherTenant) {
		return Claims{}, wrongTenant()
	}
	if err != nil {
		return Claims{}, invalid(err)
	}
	claims, err := i.checkClaims(&c, now)
	if err == nil {
		kid, _ := t.Header["kid"].(string)
		uid, _ := canonicalTenantUID(c.TenantUID)
		i.verified.put(token, verifiedToken{claims: &c, kid: kid, tenantUID: uid})
	}
	return claims, err
}

// verificationKey is the jwt.Keyfunc: it runs after the parser has checked
// that alg is EdDSA and decoded the claims into c, and returns the public
// key the header's kid names among the keys of the tenant c's tuid names
// (or the keys shared by every tenant before keys were per tenant).
func (i *Issuer) verificationKey(t *jwt.Token, c *accessClaims, requestTenantUID string) (any, error) {
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
	// A token without tuid is invalid: checkClaims refuses it.
	if requestTenantUID != "" && c.TenantUID != "" && c.TenantUID != requestTenantUID {
		return nil, errOtherTenant
	}
	now := i.cfg.Now()
	key := i.shared.Load().byKID[kid]
	if key == nil {
		uid, ok := canonicalTenantUID(c.TenantUID)
		if !ok {
			return nil, fmt.Errorf("tuid %q is not a tenant uid", c.TenantUID)
		}
		if set := i.keysForVerify(uid, requestTenantUID != ""); set != nil {
			key = set.byKID[kid]
			if key == nil && plausibleKeyID(kid) {
				key = i.reloadForUnknownKey(uid, kid)
			}
		}
	}
	// Access tokens are EdDSA only: an RSA key (the OpenID Provider's)
	// verifies none of them.
	if key == nil || key.alg != AlgEdDSA || !key.publishedAt(now) {
		return nil, fmt.Errorf("kid %q: %w", kid, errUnknownKey)
	}
	return key.public, nil
}

// publishedKey returns the key kid names among a tenant's keys or the
// shared ones if this replica holds it and it is still published, without
// waiting for anything.
func (i *Issuer) publishedKey(tenantUID, kid string, now time.Time) *signingKey {
	key := i.shared.Load().byKID[kid]
	if key == nil {
		if set := i.loaded(tenantUID); set != nil {
			key = set.byKID[kid]
		}
	}
	if key == nil || !key.publishedAt(now) {
		return nil
	}
	return key
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
