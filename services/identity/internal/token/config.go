package token

import (
	"errors"
	"fmt"
	"log/slog"
	"time"
)

// Defaults and limits of Config.
const (
	// DefaultAccessTTL is how long an access token lives unless configured.
	DefaultAccessTTL = 15 * time.Minute
	// DefaultRotateEvery is how long a signing key stays current unless
	// configured.
	DefaultRotateEvery = 30 * 24 * time.Hour
	// DefaultReloadEvery is how often Run reloads the keys unless configured.
	DefaultReloadEvery = time.Minute
	// ClockLeeway is the clock skew tolerated when checking iat, nbf and exp:
	// replicas and the services verifying their tokens never agree on the
	// time exactly.
	ClockLeeway = 30 * time.Second
	// MinKeyEncryptionKeyBytes is the shortest key-encryption key accepted:
	// the AES-256 key derived from it is no stronger than its input.
	MinKeyEncryptionKeyBytes = 32
)

// Config configures an Issuer. Zero durations take the defaults above.
type Config struct {
	// Issuer is the iss claim of every token, e.g. "tenantry-identity".
	// Verify refuses tokens of any other issuer.
	Issuer string
	// AccessTTL is the lifetime of an access token.
	AccessTTL time.Duration
	// RotateEvery is how long a signing key stays current before Run
	// replaces it.
	RotateEvery time.Duration
	// ReloadEvery is how often Run reloads keys from the database and checks
	// whether a rotation or deletion is due. It also bounds how long another
	// replica may keep signing with a key retired elsewhere, so it is part of
	// how long retired keys stay published.
	ReloadEvery time.Duration
	// KeyEncryptionKey seals the private keys at rest; at least
	// MinKeyEncryptionKeyBytes bytes, e.g. from `openssl rand -base64 32`.
	// Every replica must use the same one.
	KeyEncryptionKey string
	// Logger receives key lifecycle events; nil means slog.Default().
	Logger *slog.Logger
	// Now is the clock; nil means time.Now. Tests move it to expire tokens
	// and age keys.
	Now func() time.Time
}

// withDefaults returns c with defaults filled in, or every problem with it
// at once, so an operator fixes the configuration in one go.
func (c Config) withDefaults() (Config, error) {
	if c.AccessTTL == 0 {
		c.AccessTTL = DefaultAccessTTL
	}
	if c.RotateEvery == 0 {
		c.RotateEvery = DefaultRotateEvery
	}
	if c.ReloadEvery == 0 {
		c.ReloadEvery = DefaultReloadEvery
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	if c.Now == nil {
		c.Now = time.Now
	}

	var errs []error
	if c.Issuer == "" {
		errs = append(errs, errors.New("the token issuer (iss) is empty: configure one, e.g. tenantry-identity"))
	}
	if len(c.KeyEncryptionKey) < MinKeyEncryptionKeyBytes {
		errs = append(errs, fmt.Errorf("the key-encryption key (TENANTRY_KEY_ENCRYPTION_KEY) has %d bytes, "+
			"needs at least %d: generate one with `openssl rand -base64 32`",
			len(c.KeyEncryptionKey), MinKeyEncryptionKeyBytes))
	}
	for _, d := range []struct {
		name  string
		value time.Duration
	}{
		{"access token TTL", c.AccessTTL},
		{"key rotation interval", c.RotateEvery},
		{"key reload interval", c.ReloadEvery},
	} {
		if d.value < 0 {
			errs = append(errs, fmt.Errorf("the %s is negative (%s)", d.name, d.value))
		}
	}
	if err := errors.Join(errs...); err != nil {
		return c, fmt.Errorf("token: invalid configuration: %w", err)
	}
	return c, nil
}

// deleteGrace is how long a retired key stays published after retirement:
// the life of the last token signed with it. Another replica may sign with
// it until its next reload, and that token lives AccessTTL, give or take
// the clock skew Verify tolerates.
func (c Config) deleteGrace() time.Duration {
	return c.AccessTTL + c.ReloadEvery + ClockLeeway
}
