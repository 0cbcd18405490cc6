package authn

import (
	"context"
	"errors"
)

// ErrUnknownToken is what an Authenticator returns (possibly wrapped) for a
// token it does not recognise, so that a Chain goes on to the next one.
// Any other error stops the chain: the token may be valid, but it could not
// be checked.
var ErrUnknownToken = errors.New("authn: unknown token")

// Authenticator turns a bearer token into a Principal.
//
// Implementations must not log the token or put it in an error.
type Authenticator interface {
	// Authenticate returns the Principal that token stands for, or an
	// error wrapping ErrUnknownToken when it does not know the token.
	Authenticate(ctx context.Context, token string) (Principal, error)
}

// AuthenticatorFunc adapts a function to an Authenticator.
type AuthenticatorFunc func(ctx context.Context, token string) (Principal, error)

// Authenticate calls f.
func (f AuthenticatorFunc) Authenticate(ctx context.Context, token string) (Principal, error) {
	return f(ctx, token)
}

// Chain returns an Authenticator that asks each of auths in turn and
// returns the first Principal found. It goes on only past ErrUnknownToken;
// nil authenticators are skipped. With none left it knows no token.
func Chain(auths ...Authenticator) Authenticator {
	var live []Authenticator
	for _, a := range auths {
		if a != nil {
			live = append(live, a)
		}
	}
	return chain(live)
}

// chain is the Authenticator that Chain returns.
type chain []Authenticator

// Authenticate implements Authenticator.
func (c chain) Authenticate(ctx context.Context, token string) (Principal, error) {
	for _, a := range c {
		p, err := a.Authenticate(ctx, token)
		if errors.Is(err, ErrUnknownToken) {
			continue
		}
		return p, err
	}
	return Principal{}, ErrUnknownToken
}
