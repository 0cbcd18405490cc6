package authn

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"errors"
	"fmt"
	"strings"
)

// Credential is one configured bearer token and the role it grants.
type Credential struct {
	// Role is the role the token grants, as named in a Policy.
	Role string
	// Token is the secret the caller sends as "Bearer <token>".
	Token string
}

// StaticTokens authenticates a fixed set of configured tokens, such as the
// operators' and the services' own. It keeps only SHA-256 digests of them,
// so a memory dump or a stray %v does not reveal a token.
type StaticTokens struct {
	digests [][sha256.Size]byte
	roles   []string
}

// NewStaticTokens returns an Authenticator for creds. Every credential needs
// a role and a token without whitespace, and no two may share a token
// (that would make the role ambiguous). No credentials at all is allowed:
// every token is then unknown.
func NewStaticTokens(creds ...Credential) (*StaticTokens, error) {
	s := &StaticTokens{}
	var errs []error
	seen := make(map[[sha256.Size]byte]int, len(creds))
	for i, c := range creds {
		// Errors name the credential by position and role, never by token.
		switch {
		case c.Role == "":
			errs = append(errs, fmt.Errorf("authn: credential %d has no role", i+1))
			continue
		case c.Token == "":
			errs = append(errs, fmt.Errorf("authn: credential %d (role %q) has an empty token", i+1, c.Role))
			continue
		case strings.ContainsFunc(c.Token, isSpaceOrControl):
			errs = append(errs, fmt.Errorf("authn: credential %d (role %q) has whitespace or control characters in its token", i+1, c.Role))
			continue
		}
		d := sha256.Sum256([]byte(c.Token))
		if j, dup := seen[d]; dup {
			errs = append(errs, fmt.Errorf("authn: credentials %d (role %q) and %d (role %q) share a token; give each its own",
				j+1, creds[j].Role, i+1, c.Role))
			continue
		}
		seen[d] = i
		s.digests = append(s.digests, d)
		s.roles = append(s.roles, c.Role)
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return s, nil
}

// Authenticate implements Authenticator. It compares the token's digest
// with every known digest in constant time and without stopping at a
// match, so that timing reveals neither whether nor which credential
// matched.
func (s *StaticTokens) Authenticate(_ context.Context, token string) (Principal, error) {
	d := sha256.Sum256([]byte(token))
	found, index := 0, 0
	for i := range s.digests {
		match := subtle.ConstantTimeCompare(d[:], s.digests[i][:])
		found |= match
		index = subtle.ConstantTimeSelect(match, i, index)
	}
	if found == 0 {
		return Principal{}, ErrUnknownToken
	}
	return Principal{Role: s.roles[index]}, nil
}

// isSpaceOrControl reports whether r cannot appear in a bearer token.
func isSpaceOrControl(r rune) bool {
	return r <= ' ' || r == 0x7f
}
