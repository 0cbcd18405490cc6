package server

import (
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"net/url"
	"strings"

	"tenantry.dev/identity/internal/account"
	"tenantry.dev/platform/fault"
)

const (
	defaultPageSize = 50
	maxPageSize     = 1000
)

func pageSize(n int32) (int, error) {
	switch {
	case n < 0:
		return 0, fault.Invalid("page_size", "PAGE_SIZE_INVALID", "page_size must not be negative")
	case n == 0:
		return defaultPageSize, nil
	case n > maxPageSize:
		return maxPageSize, nil
	}
	return int(n), nil
}

// parseUserFilter reads `cond AND cond ...` where cond is `state = ACTIVE`
// (INVITED, DISABLED), `role = "admin"` or `email_verified = true|false`.
func parseUserFilter(s string) (account.UserQuery, error) {
	var q account.UserQuery
	s = strings.TrimSpace(s)
	if s == "" {
		return q, nil
	}
	if len(s) > 1024 {
		return q, fault.Invalid("filter", "INVALID_FILTER", "filter is longer than 1024 characters")
	}
	bad := func(format string, args ...any) error {
		return fault.Invalid("filter", "INVALID_FILTER", "filter: "+format, args...)
	}
	for _, cond := range splitAnd(s) {
		key, value, ok := strings.Cut(cond, "=")
		if !ok {
			return q, bad("%q is not `field = value`; use state, role or email_verified", cond)
		}
		key, value = strings.TrimSpace(key), strings.TrimSpace(value)
		switch key {
		case "state":
			switch strings.ToUpper(strings.TrimPrefix(strings.ToUpper(value), "STATE_")) {
			case "ACTIVE":
				q.State, q.Disabled = account.Active, ptr(false)
			case "INVITED":
				q.State = account.Invited
			case "DISABLED":
				q.Disabled = ptr(true)
			default:
				return q, bad("state must be ACTIVE, INVITED or DISABLED, not %q", value)
			}
		case "role":
			role := strings.Trim(value, `"`)
			if _, err := account.ValidateRoles("filter", []string{role}); err != nil || !strings.HasPrefix(value, `"`) || !strings.HasSuffix(value, `"`) {
				return q, bad(`role must be a quoted role name like role = "admin"`)
			}
			q.Role = role
		case "email_verified":
			switch value {
			case "true":
				q.EmailVerified = ptr(true)
			case "false":
				q.EmailVerified = ptr(false)
			default:
				return q, bad("email_verified must be true or false")
			}
		default:
			return q, bad("unknown field %q; use state, role or email_verified", key)
		}
	}
	return q, nil
}

func splitAnd(s string) []string {
	var out []string
	for _, part := range strings.Split(s, " AND ") {
		if p := strings.TrimSpace(part); p != "" {
			out = append(out, p)
		}
	}
	return out
}

func ptr[T any](v T) *T { return &v }

type userPageToken struct {
	After  string `json:"a"`
	Filter string `json:"f"`
}

func filterHash(filter string) string {
	h := sha256.Sum256([]byte(filter))
	return hex.EncodeToString(h[:8])
}

func encodeUserPageToken(after, filter string) string {
	b, _ := json.Marshal(userPageToken{After: after, Filter: filterHash(filter)})
	return base64.RawURLEncoding.EncodeToString(b)
}

func decodeUserPageToken(s, filter string) (string, error) {
	invalid := fault.Invalid("page_token", "INVALID_PAGE_TOKEN", "page_token is not one this service returned for this filter")
	b, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil || len(b) > 1024 {
		return "", invalid
	}
	var tok userPageToken
	if err := json.Unmarshal(b, &tok); err != nil || tok.Filter != filterHash(filter) {
		return "", invalid
	}
	return tok.After, nil
}

// validateOrigins checks CORS origins: scheme://host[:port], nothing more.
func validateOrigins(field string, origins []string) ([]string, error) {
	if len(origins) > 50 {
		return nil, fault.Invalid(field, "ORIGINS_TOO_MANY", "at most 50 allowed origins")
	}
	out := make([]string, 0, len(origins))
	for _, o := range origins {
		u, err := url.Parse(o)
		if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" || u.Path != "" || u.RawQuery != "" || u.User != nil || u.Fragment != "" {
			return nil, fault.Invalid(field, "ORIGIN_INVALID", "origin %q must look like https://app.example.com (scheme, host and optional port only)", o)
		}
		out = append(out, strings.ToLower(o))
	}
	return out, nil
}
