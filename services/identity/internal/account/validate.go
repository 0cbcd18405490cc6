package account

import (
	"net/mail"
	"regexp"
	"strings"
	"unicode"
	"unicode/utf8"

	"tenantry.dev/platform/fault"
)

const (
	maxEmailLength       = 254
	maxDisplayNameLength = 200
)

var usernamePattern = regexp.MustCompile(`^[a-z0-9][a-z0-9_.-]{1,28}[a-z0-9]$`)

// NormalizeEmail validates an email address and returns the form it is
// stored and compared in: trimmed and lower-cased.
func NormalizeEmail(field, s string) (string, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return "", fault.Invalid(field, "EMAIL_REQUIRED", "%s is required", field)
	}
	if len(s) > maxEmailLength || !utf8.ValidString(s) || strings.ContainsFunc(s, unicode.IsControl) {
		return "", fault.Invalid(field, "EMAIL_INVALID", "%s is not a valid email address", field)
	}
	if strings.ContainsFunc(s, func(r rune) bool { return r > unicode.MaxASCII }) {
		// Mail goes out without SMTPUTF8, so such an address could not be
		// reached: refuse it now rather than fail to deliver later.
		return "", fault.Invalid(field, "EMAIL_NOT_ASCII", "%s must be an ASCII email address; internationalised addresses are not supported", field)
	}
	addr, err := mail.ParseAddress(s)
	if err != nil || addr.Name != "" || addr.Address != s || !strings.Contains(addr.Address, "@") {
		return "", fault.Invalid(field, "EMAIL_INVALID", "%s is not a valid email address (like ann@example.com)", field)
	}
	local, domain, _ := strings.Cut(addr.Address, "@")
	if local == "" || !strings.Contains(domain, ".") && domain != "localhost" {
		return "", fault.Invalid(field, "EMAIL_INVALID", "%s is not a valid email address (like ann@example.com)", field)
	}
	return strings.ToLower(addr.Address), nil
}

// NormalizeUsername validates an optional username and lower-cases it.
func NormalizeUsername(field, s string) (string, error) {
	if s == "" {
		return "", nil
	}
	u := strings.ToLower(strings.TrimSpace(s))
	if !usernamePattern.MatchString(u) {
		return "", fault.Invalid(field, "USERNAME_INVALID",
			"%s must be 3-30 characters of a-z, 0-9, '_', '.', '-', starting and ending with a letter or digit", field)
	}
	return u, nil
}

// ValidateDisplayName checks a name shown to people.
func ValidateDisplayName(field, s string) error {
	if !utf8.ValidString(s) || strings.ContainsFunc(s, isControlOrSeparator) {
		return fault.Invalid(field, "DISPLAY_NAME_INVALID", "%s must be text without control characters", field)
	}
	if n := utf8.RuneCountInString(s); n > maxDisplayNameLength {
		return fault.Invalid(field, "DISPLAY_NAME_TOO_LONG", "%s has %d characters; at most %d are allowed", field, n, maxDisplayNameLength)
	}
	return nil
}

// localPart returns the part of an email before the @, for the password
// similarity check.
func localPart(email string) string {
	l, _, _ := strings.Cut(email, "@")
	return l
}

// isControlOrSeparator reports control characters and the Unicode line and
// paragraph separators, which would break headers and logs like newlines.
func isControlOrSeparator(r rune) bool {
	return unicode.IsControl(r) || unicode.In(r, unicode.Zl, unicode.Zp)
}
