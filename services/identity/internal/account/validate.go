package account

import (
	"net/mail"
	"regexp"
	"strings"
	"unicode"
	"unicode/utf8"

	"tenantry.dev/platform/fault"
	"tenantry.dev/platform/tenantname"
)

const maxEmailLength = 254

var usernamePattern = regexp.MustCompile(`^[a-z0-9][a-z0-9_.-]{1,28}[a-z0-9]$`)

// NormalizeEmail validates an email address and returns the form it is
// stored and compared in: trimmed and lower-cased.
//
// The domain must be a name. Addresses at IP literals ("ann@[127.0.0.1]",
// "ann@[IPv6:::1]") and at bare IP addresses ("ann@127.0.0.1") are refused:
// no one's mailbox lives there, and accepting them would let anyone make the
// mail relay deliver to hosts of their choosing, internal ones included.
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
	// Before parsing, because net/mail refuses "[IPv6:...]" as merely
	// malformed and the caller deserves the same answer for every IP form.
	if at := strings.LastIndexByte(s, '@'); at >= 0 && strings.HasPrefix(s[at+1:], "[") {
		return "", errEmailIPLiteral(field)
	}
	addr, err := mail.ParseAddress(s)
	if err != nil || addr.Name != "" || addr.Address != s || !strings.Contains(addr.Address, "@") {
		return "", fault.Invalid(field, "EMAIL_INVALID", "%s is not a valid email address (like ann@example.com)", field)
	}
	local, domain, _ := strings.Cut(addr.Address, "@")
	if local == "" || !strings.Contains(domain, ".") && domain != "localhost" {
		return "", fault.Invalid(field, "EMAIL_INVALID", "%s is not a valid email address (like ann@example.com)", field)
	}
	if isNumericLabel(domain[strings.LastIndexByte(domain, '.')+1:]) {
		// "127.0.0.1", but also "127.1" and "0x7f.1", which resolvers read
		// as IPv4 addresses: no top-level domain is a number.
		return "", errEmailIPLiteral(field)
	}
	return strings.ToLower(addr.Address), nil
}

func errEmailIPLiteral(field string) error {
	return fault.Invalid(field, "EMAIL_IP_LITERAL",
		"%s must have a domain name after the @, not an IP address (like ann@example.com)", field)
}

// isNumericLabel reports whether a domain label is a decimal or "0x"
// hexadecimal number, which makes the domain an IPv4 address.
func isNumericLabel(label string) bool {
	digits, hex := label, false
	if rest, ok := strings.CutPrefix(strings.ToLower(label), "0x"); ok {
		digits, hex = rest, true
	}
	if digits == "" {
		return hex
	}
	for _, c := range digits {
		if !('0' <= c && c <= '9' || hex && 'a' <= c && c <= 'f') {
			return false
		}
	}
	return true
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

// ValidateDisplayName checks a name shown to people, by the rule the
// registry applies to tenants' names (tenantname.ValidateDisplayName): one
// line of visible text without direction controls, or empty.
func ValidateDisplayName(field, s string) error {
	return tenantname.ValidateDisplayName(field, s)
}

// fieldErrors gathers the InvalidArgument faults of a request's fields, so
// that one answer names every field to correct: a person filling in a form
// fixes them all at once instead of meeting them one submission at a time.
// Methods check every field before they return, and before any costly or
// writing step (a hash, a transaction that writes), so gathering changes
// what an answer says, never what a call does.
type fieldErrors struct {
	faults []*fault.Error
	other  error // the first error that is not a field's: it wins
}

// add records err, if any.
func (e *fieldErrors) add(err error) {
	if err == nil {
		return
	}
	if f, ok := fault.As(err); ok && f.Kind == fault.InvalidArgument && len(f.Violations) > 0 {
		e.faults = append(e.faults, f)
		return
	}
	if e.other == nil {
		e.other = err
	}
}

// err returns nil when nothing was added, the first error that is not a
// field's if there is one, else one InvalidArgument fault holding every
// field violation. That fault keeps the first fault's reason (the one a
// client saw before the others were gathered) and joins the messages.
func (e *fieldErrors) err() error {
	switch {
	case e.other != nil:
		return e.other
	case len(e.faults) == 0:
		return nil
	case len(e.faults) == 1:
		return e.faults[0]
	}
	joined := *e.faults[0]
	joined.Violations = nil
	messages := make([]string, 0, len(e.faults))
	for _, f := range e.faults {
		joined.Violations = append(joined.Violations, f.Violations...)
		messages = append(messages, f.Message)
	}
	joined.Message = strings.Join(messages, "; ")
	return &joined
}

// localPart returns the part of an email before the @, for the password
// similarity check.
func localPart(email string) string {
	l, _, _ := strings.Cut(email, "@")
	return l
}
