// Package tenantrole names the PostgreSQL roles that keep a product
// service inside its own tenant, and derives their credentials.
//
// Every (tenant, component) pair has a LOGIN role of its own, t_<uid>_<component>,
// that owns the component's tables in the tenant's schema and has no
// privilege anywhere else: not on another tenant's schema, not on another
// component's tables in the same schema (identity's password and token
// hashes). A product service reaches a tenant's data only by logging in as
// that tenant's role, so a SQL injection in its code stays inside the
// tenant it was serving: PostgreSQL, not the service, refuses the rest.
//
// Why one login role per tenant rather than one login role per component
// that SET ROLEs to per-tenant roles: SET ROLE is checked against the
// session's login role, so any SQL the service runs, an injected
// `SET ROLE t_<other tenant>_notes` or `set_config('role', ...)` included,
// could switch to another tenant's role. With a login role per tenant there
// is no role to switch to.
//
// The credentials need no store. The registry derives each component's
// token from its own key (TENANTRY_COMPONENT_KEY) and hands it to the
// component's operator once; a tenant role's password is derived from the
// component token and the tenant's uid, so the registry can set it when it
// creates the role and the component's service can compute it when it
// connects, in any language (HMAC-SHA256 and base64url).
package tenantrole

import (
	"crypto/hmac"
	"crypto/pbkdf2"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"regexp"
	"strings"
)

// MaxComponentIDBytes is the longest component id a role name has room
// for: PostgreSQL truncates identifiers past 63 bytes, and t_ plus 32 hex
// digits plus _ take 35.
const MaxComponentIDBytes = 63 - len("t_") - 32 - len("_")

// TokenPrefix starts every component token, so a leaked one is
// recognisable (secret scanners) and never mistaken for an operator token.
const TokenPrefix = "tnc_"

const (
	tokenContext    = "tenantry-component-token/v1:"
	passwordContext = "tenantry-db-password/v1:"
)

var (
	uuidPattern      = regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$`)
	componentPattern = regexp.MustCompile(`^[a-z]([a-z0-9-]*[a-z0-9])?$`)
)

// ErrInvalidToken is returned for a string that is no valid component token.
var ErrInvalidToken = errors.New("tenantrole: not a valid component token")

// RoleName returns the login role of component in the tenant with uid (in
// canonical lowercase UUID form). It panics on a malformed uid or component
// id: both come from validated registry records, never from requests.
func RoleName(uid, component string) string {
	if !uuidPattern.MatchString(uid) {
		panic(fmt.Sprintf("tenantrole: tenant uid %q is not a canonical UUID", uid))
	}
	mustComponent(component)
	return "t_" + strings.ReplaceAll(uid, "-", "") + "_" + component
}

// SpareRoleName returns the role of component in a spare schema, prepared
// before any tenant claims it; it is renamed to RoleName at the claim.
// spare is the spare schema's unique suffix (hex).
func SpareRoleName(spare, component string) string {
	mustComponent(component)
	return "tenantry_spare_" + spare + "_" + component
}

func mustComponent(component string) {
	if !componentPattern.MatchString(component) || len(component) > MaxComponentIDBytes {
		panic(fmt.Sprintf("tenantrole: component id %q is not valid", component))
	}
}

// ComponentToken derives component's token from the registry's key. The
// token authenticates the component's service to the registry and is the
// secret its tenant roles' passwords are derived from.
func ComponentToken(key []byte, component string) string {
	mustComponent(component)
	mac := hmac.New(sha256.New, key)
	mac.Write([]byte(tokenContext + component))
	return TokenPrefix + component + "_" + base64.RawURLEncoding.EncodeToString(mac.Sum(nil))
}

// VerifyComponentToken reports which component token belongs to, checking
// it against key in constant time.
func VerifyComponentToken(key []byte, token string) (string, error) {
	component, err := ComponentOf(token)
	if err != nil {
		return "", err
	}
	want := ComponentToken(key, component)
	if subtle.ConstantTimeCompare([]byte(want), []byte(token)) != 1 {
		return "", ErrInvalidToken
	}
	return component, nil
}

// ComponentOf returns the component a token claims to be for, without
// checking it: for a service that holds its own token.
func ComponentOf(token string) (string, error) {
	rest, ok := strings.CutPrefix(token, TokenPrefix)
	if !ok {
		return "", ErrInvalidToken
	}
	component, mac, ok := strings.Cut(rest, "_")
	if !ok || mac == "" || !componentPattern.MatchString(component) || len(component) > MaxComponentIDBytes {
		return "", ErrInvalidToken
	}
	return component, nil
}

// Password returns the password of the tenant role of the component whose
// token is given, in the tenant with uid: base64url (no padding) of
// HMAC-SHA256(token, "tenantry-db-password/v1:" + uid).
func Password(token, uid string) string {
	mac := hmac.New(sha256.New, []byte(token))
	mac.Write([]byte(passwordContext + uid))
	return base64.RawURLEncoding.EncodeToString(mac.Sum(nil))
}

// scramIterations is the PBKDF2 work in the SCRAM verifiers of tenant
// roles. Stretching protects guessable passwords; these are 256-bit HMAC
// outputs, which no iteration count makes easier or harder to find, so the
// count is kept low: every connection of a product service to a tenant pays
// it twice (client proof and server check), and so does every role the
// registry creates.
const scramIterations = 256

// SCRAMVerifier returns the SCRAM-SHA-256 secret PostgreSQL stores for
// password (the form ALTER ROLE ... PASSWORD accepts pre-hashed), so the
// password itself never reaches the server's statement log.
//
// Written here rather than taken from a library: it is RFC 5802's four
// lines of key derivation over the standard library's PBKDF2 and HMAC, and
// no maintained Go library exports it apart from a full SCRAM
// conversation. Tests check it by logging in with pgx's SCRAM client.
func SCRAMVerifier(password string) (string, error) {
	salt := make([]byte, 16)
	if _, err := rand.Read(salt); err != nil {
		return "", fmt.Errorf("tenantrole: salt: %w", err)
	}
	salted, err := pbkdf2.Key(sha256.New, password, salt, scramIterations, sha256.Size)
	if err != nil {
		return "", fmt.Errorf("tenantrole: derive SCRAM key: %w", err)
	}
	clientKey := hmacSHA256(salted, "Client Key")
	storedKey := sha256.Sum256(clientKey)
	serverKey := hmacSHA256(salted, "Server Key")
	b64 := base64.StdEncoding.EncodeToString
	return fmt.Sprintf("SCRAM-SHA-256$%d:%s$%s:%s", scramIterations, b64(salt), b64(storedKey[:]), b64(serverKey)), nil
}

func hmacSHA256(key []byte, msg string) []byte {
	m := hmac.New(sha256.New, key)
	m.Write([]byte(msg))
	return m.Sum(nil)
}
