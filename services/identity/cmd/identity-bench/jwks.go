package main

import (
	"crypto/ed25519"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/golang-jwt/jwt/v5"

	identityv1 "tenantry.dev/gen/tenantry/identity/v1"
)

// benchIssuer is the iss identity is started with, and the one the local
// verifier expects, as a calling service would be configured with it.
const benchIssuer = "tenantry-identity-bench"

// accessTokenType is the typ header of identity's access tokens (RFC 9068).
const accessTokenType = "at+jwt"

// clockLeeway is the clock skew the verifier tolerates.
const clockLeeway = 30 * time.Second

// callerClaims are the claims a calling service reads from an access token.
type callerClaims struct {
	jwt.RegisteredClaims
	Tenant  string   `json:"tid"`
	Session string   `json:"sid"`
	Roles   []string `json:"roles"`
}

// jwksVerifier checks identity's access tokens the way another service
// would: locally, with the public keys from TokenService.GetJwks, without
// calling identity per token.
type jwksVerifier struct {
	keys   map[string]ed25519.PublicKey
	parser *jwt.Parser
}

// newJWKSVerifier builds a verifier from the JWKS, refusing keys that are
// not Ed25519 signing keys.
func newJWKSVerifier(jwks []*identityv1.Jwk, issuer string) (*jwksVerifier, error) {
	v := &jwksVerifier{
		keys: map[string]ed25519.PublicKey{},
		parser: jwt.NewParser(
			jwt.WithValidMethods([]string{jwt.SigningMethodEdDSA.Alg()}),
			jwt.WithIssuer(issuer),
			jwt.WithExpirationRequired(),
			jwt.WithIssuedAt(),
			jwt.WithLeeway(clockLeeway),
		),
	}
	for _, k := range jwks {
		if k.GetKty() != "OKP" || k.GetCrv() != "Ed25519" || k.GetAlg() != "EdDSA" || k.GetUse() != "sig" || k.GetKid() == "" {
			return nil, fmt.Errorf("JWKS key %q is not an Ed25519 signing key (kty %q, crv %q, alg %q, use %q)",
				k.GetKid(), k.GetKty(), k.GetCrv(), k.GetAlg(), k.GetUse())
		}
		raw, err := base64.RawURLEncoding.DecodeString(k.GetX())
		if err != nil || len(raw) != ed25519.PublicKeySize {
			return nil, fmt.Errorf("JWKS key %q: x is not a base64url Ed25519 public key", k.GetKid())
		}
		v.keys[k.GetKid()] = ed25519.PublicKey(raw)
	}
	if len(v.keys) == 0 {
		return nil, errors.New("the JWKS has no keys")
	}
	return v, nil
}

// verify checks a token's signature, type, issuer and times, and that it
// names a user, a tenant and a session.
func (v *jwksVerifier) verify(token string) (*callerClaims, error) {
	var c callerClaims
	_, err := v.parser.ParseWithClaims(token, &c, func(t *jwt.Token) (any, error) {
		if typ, _ := t.Header["typ"].(string); typ != accessTokenType {
			return nil, fmt.Errorf("typ %q is not %q", typ, accessTokenType)
		}
		kid, _ := t.Header["kid"].(string)
		key, ok := v.keys[kid]
		if !ok {
			return nil, fmt.Errorf("kid %q is not in the JWKS", kid)
		}
		return key, nil
	})
	if err != nil {
		return nil, err
	}
	if c.Subject == "" || c.Tenant == "" || c.Session == "" {
		return nil, errors.New("sub, tid or sid is missing")
	}
	return &c, nil
}

// signedToken is a token cut into what ed25519 verifies: the signing input
// and the signature, with the key its kid names.
type signedToken struct {
	key       ed25519.PublicKey
	input     []byte
	signature []byte
}

// splitSigned cuts token for a bare ed25519.Verify, the floor under any
// JWT library's cost.
func (v *jwksVerifier) splitSigned(token string) (signedToken, error) {
	t, parts, err := jwt.NewParser().ParseUnverified(token, &callerClaims{})
	if err != nil {
		return signedToken{}, err
	}
	kid, _ := t.Header["kid"].(string)
	key, ok := v.keys[kid]
	if !ok {
		return signedToken{}, fmt.Errorf("kid %q is not in the JWKS", kid)
	}
	sig, err := base64.RawURLEncoding.DecodeString(parts[2])
	if err != nil {
		return signedToken{}, fmt.Errorf("signature: %w", err)
	}
	return signedToken{key: key, input: []byte(strings.Join(parts[:2], ".")), signature: sig}, nil
}

// verify checks the bare signature.
func (s signedToken) verify() error {
	if !ed25519.Verify(s.key, s.input, s.signature) {
		return errors.New("bad ed25519 signature")
	}
	return nil
}
