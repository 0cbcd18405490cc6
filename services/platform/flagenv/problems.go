package flagenv

import (
	"errors"
	"fmt"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// Problems collects what is wrong with a configuration, so that a service
// refuses to start with one message listing every problem rather than
// making the operator fix them one restart at a time.
type Problems []string

// Addf records a problem.
func (p *Problems) Addf(format string, args ...any) {
	*p = append(*p, fmt.Sprintf(format, args...))
}

// Duration parses value as a duration of at least minimum, recording a
// problem naming the setting otherwise.
func (p *Problems) Duration(name, value string, minimum time.Duration) time.Duration {
	d, err := time.ParseDuration(value)
	if err != nil || d < minimum {
		p.Addf("%s must be a duration of at least %s such as 30s or 720h, not %q", name, minimum, value)
	}
	return d
}

// Int parses value as an integer from lo to hi, recording a problem naming
// the setting otherwise.
func (p *Problems) Int(name, value string, lo, hi int) int {
	n, err := strconv.Atoi(value)
	if err != nil || n < lo || n > hi {
		p.Addf("%s must be a number from %d to %d, not %q", name, lo, hi, value)
	}
	return n
}

// Err returns nil without problems, else one error listing them all.
func (p Problems) Err() error {
	if len(p) == 0 {
		return nil
	}
	return errors.New("invalid configuration:\n  - " + strings.Join(p, "\n  - "))
}

// IsPostgresURL reports whether s is a postgres:// or postgresql:// URL.
func IsPostgresURL(s string) bool {
	u, err := url.Parse(s)
	return err == nil && (u.Scheme == "postgres" || u.Scheme == "postgresql")
}

// List splits a comma-separated setting, dropping empty items.
func List(s string) []string {
	var out []string
	for _, item := range strings.Split(s, ",") {
		if item = strings.TrimSpace(item); item != "" {
			out = append(out, item)
		}
	}
	return out
}
