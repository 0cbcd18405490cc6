package tenantname

import (
	"net/netip"
	"strings"
	"unicode"
	"unicode/utf8"

	"golang.org/x/net/idna"

	"tenantry.dev/platform/fault"
)

// Limits of a host name. MaxHostLength is DNS's limit for a name in text
// form without the root dot; maxHostInput bounds the work done on input
// before it is known to be a name at all, with room for a port and for
// Unicode labels that are longer in UTF-8 than in punycode.
const (
	// MaxHostLength is the length of the longest normalised host, in
	// characters.
	MaxHostLength  = 253
	maxLabelLength = 63
	maxHostInput   = 1024
)

// hostProfile maps a Unicode host to its ASCII form the way browsers do
// (UTS #46, non-transitional) and refuses names that IDNA 2008 refuses:
// invalid code points, misplaced joiners, labels that mix directions in a way
// the Bidi rule forbids, and labels or names that are too long. The options
// are spelled out rather than taking idna.Lookup, whose configuration "may
// change over time".
var hostProfile = idna.New(
	idna.MapForLookup(),
	idna.Transitional(false),
	idna.BidiRule(),
	idna.ValidateLabels(true),
	idna.CheckHyphens(true),
	idna.CheckJoiners(true),
	idna.StrictDomainName(true),
	idna.VerifyDNSLength(true),
)

// NormalizeHost returns the canonical form of a host as a browser or proxy
// sends it in the Host header or :authority: lower case, without port and
// trailing dot, with internationalised labels in punycode ("xn--"). Tenants
// are resolved by this form only, so every spelling of one host reaches the
// same tenant and no spelling reaches another.
//
// Unicode is mapped as browsers map it (UTS #46), so fullwidth letters become
// ASCII ("ａｃｍｅ.localhost" is "acme.localhost") and a name that IDNA 2008
// refuses is refused. Stricter than browsers, it refuses invisible characters
// that UTS #46 would silently drop or keep (zero-width spaces and joiners,
// soft hyphens, direction marks and overrides, variation selectors): no
// client that means well sends them, and their only use is to make a host
// look like another. It also refuses symbols and punctuation in
// internationalised labels, which IDNA 2008 forbids and UTS #46 still allows
// (emoji, and slashes and dots that only look like URL syntax).
//
// It also refuses what is not a name: empty hosts, IP addresses (including
// the forms browsers read as IPv4, such as "127.1" and "0x7f.1"), user
// information, paths, spaces, control characters, percent-encoding,
// wildcards and ports outside 1 to 65535. field is the request field path
// reported in the error.
func NormalizeHost(field, h string) (string, error) {
	if h == "" {
		return "", errHostEmpty(field)
	}
	if len(h) > maxHostInput {
		return "", fault.Invalid(field, ReasonHostTooLong,
			"%s is %d bytes long; a host name has at most %d characters", field, len(h), MaxHostLength)
	}
	// Brackets are RFC 3986's syntax for IP literals and nothing else, so
	// whatever they enclose, it is not a name.
	if h[0] == '[' {
		return "", errHostIPLiteral(field)
	}
	if err := checkHostCharacters(field, h); err != nil {
		return "", err
	}
	host, err := stripPort(field, h)
	if err != nil {
		return "", err
	}
	// One trailing dot is the fully-qualified spelling of the same name.
	host = strings.TrimSuffix(host, ".")
	if host == "" {
		return "", errHostEmpty(field)
	}
	if _, err := netip.ParseAddr(host); err == nil {
		return "", errHostIPLiteral(field)
	}
	if len(host) > MaxHostLength && isASCII(host) {
		return "", errHostTooLong(field, len(host))
	}
	ascii, err := hostProfile.ToASCII(host)
	if err != nil {
		// The idna error quotes the input, so it goes to the logs only.
		return "", fault.Invalid(field, ReasonHostInvalid,
			"%s is not a valid domain name: use labels of letters, digits and '-' (or valid internationalised labels) that do not start or end with '-', at most 63 characters each",
			field).WithCause(err)
	}
	// The profile checks most of the grammar but not all of it (with the
	// Unicode 15 tables it lets an empty last label through, and it has no
	// notion of numeric top-level labels). Checking the output against our
	// own grammar also keeps this function safe if a future idna version
	// relaxes a rule.
	if err := checkCanonicalHost(field, ascii); err != nil {
		return "", err
	}
	if err := checkInternationalLabels(field, ascii); err != nil {
		return "", err
	}
	return ascii, nil
}

// checkHostCharacters refuses characters that are never part of a host name,
// with a message that says what the character suggests went wrong.
func checkHostCharacters(field, h string) error {
	if !utf8.ValidString(h) {
		return fault.Invalid(field, ReasonHostInvalidCharacter,
			"%s is not valid UTF-8; send the host name only", field)
	}
	pos := 0
	for _, r := range h {
		pos++
		switch {
		case r == '@':
			return fault.Invalid(field, ReasonHostInvalidCharacter,
				"%s must not contain user information ('@' at position %d); send the host name only", field, pos)
		case r == '/' || r == '\\' || r == '?' || r == '#':
			return fault.Invalid(field, ReasonHostInvalidCharacter,
				"%s must not contain a path, query or fragment (%q at position %d); send the host name only", field, r, pos)
		case r == '%':
			return fault.Invalid(field, ReasonHostInvalidCharacter,
				"%s must not be percent-encoded ('%%' at position %d); send the host name as it is", field, pos)
		case r == '*':
			return fault.Invalid(field, ReasonHostInvalidCharacter,
				"%s must not be a wildcard ('*' at position %d); name one host", field, pos)
		case unicode.IsControl(r):
			return fault.Invalid(field, ReasonHostInvalidCharacter,
				"%s has a control character at position %d; send the host name only", field, pos)
		case unicode.IsSpace(r):
			return fault.Invalid(field, ReasonHostInvalidCharacter,
				"%s has a space at position %d; a host name has no spaces", field, pos)
		case isInvisible(r):
			return fault.Invalid(field, ReasonHostInvalidCharacter,
				"%s has an invisible or formatting character (such as a zero-width joiner or a direction override) at position %d; remove it",
				field, pos)
		case r == '[' || r == ']':
			return fault.Invalid(field, ReasonHostInvalidCharacter,
				"%s has %q at position %d; brackets only enclose IPv6 addresses, which cannot name a tenant", field, r, pos)
		}
	}
	return nil
}

// isInvisible reports whether r renders as nothing or changes how its
// neighbours render: format characters (Cf: zero-width space, joiners, soft
// hyphen, direction marks, overrides and isolates, byte order mark),
// variation selectors and the other default-ignorable code points such as the
// combining grapheme joiner and Hangul fillers.
func isInvisible(r rune) bool {
	return unicode.Is(unicode.Cf, r) ||
		unicode.Is(unicode.Variation_Selector, r) ||
		unicode.Is(unicode.Other_Default_Ignorable_Code_Point, r)
}

// stripPort removes a ":port" suffix, refusing ports a URL cannot carry.
// More than one ':' is a bare IPv6 address or garbage.
func stripPort(field, h string) (string, error) {
	switch strings.Count(h, ":") {
	case 0:
		return h, nil
	case 1:
	default:
		if _, err := netip.ParseAddr(h); err == nil {
			return "", errHostIPLiteral(field)
		}
		return "", fault.Invalid(field, ReasonHostInvalidCharacter,
			"%s has more than one ':'; send a host name with at most one port, e.g. acme.example.com:8443", field)
	}
	host, port, _ := strings.Cut(h, ":")
	if !validPort(port) {
		return "", fault.Invalid(field, ReasonHostInvalidPort,
			"%s has an invalid port; a port is a number from 1 to 65535 without leading zeros, e.g. acme.example.com:8443", field)
	}
	return host, nil
}

// validPort reports whether p is a decimal port from 1 to 65535 in its
// shortest spelling, so that one port has one spelling.
func validPort(p string) bool {
	if p == "" || len(p) > 5 || p[0] == '0' {
		return false
	}
	n := 0
	for i := 0; i < len(p); i++ {
		if p[i] < '0' || p[i] > '9' {
			return false
		}
		n = n*10 + int(p[i]-'0')
	}
	return n <= 65535
}

// checkCanonicalHost checks an ASCII host against the grammar that
// NormalizeHost promises: at most 253 characters, labels of 1 to 63
// characters of a-z, 0-9 and '-' that do not start or end with '-' and only
// have "--" at positions 3 and 4 as the "xn--" prefix, and a last label that
// is not a number.
func checkCanonicalHost(field, h string) error {
	if len(h) > MaxHostLength {
		return errHostTooLong(field, len(h))
	}
	labels := strings.Split(h, ".")
	for _, label := range labels {
		if !validHostLabel(label) {
			return fault.Invalid(field, ReasonHostInvalid,
				"%s is not a valid domain name: use labels of letters, digits and '-' that do not start or end with '-', at most 63 characters each",
				field)
		}
	}
	// Browsers parse a host whose last label is a number as an IPv4 address
	// ("127.1", "0x7f.0.0.1", "2130706433"); no top-level domain is one.
	if isNumericLabel(labels[len(labels)-1]) {
		return errHostIPLiteral(field)
	}
	return nil
}

// checkInternationalLabels refuses internationalised labels with anything
// but letters, digits, combining marks and '-'. The idna package follows
// UTS #46, which still accepts the symbols and punctuation that IDNA 2003
// allowed and IDNA 2008 forbids: emoji, but also look-alikes of URL syntax
// such as U+2044 FRACTION SLASH, which turn "acme.com⁄evil.com" into a
// host under evil.com. The character classes are IDNA 2008's LetterDigits;
// this is slightly stricter than IDNA 2008, which allows a few punctuation
// marks in context (such as the Catalan middle dot).
func checkInternationalLabels(field, h string) error {
	for label := range strings.SplitSeq(h, ".") {
		if !strings.HasPrefix(label, "xn--") {
			continue
		}
		u, err := idna.Punycode.ToUnicode(label)
		if err != nil {
			return fault.Invalid(field, ReasonHostInvalid,
				"%s has an invalid internationalised label; use the name as people type it or its valid \"xn--\" form", field).WithCause(err)
		}
		for _, r := range u {
			if r == '-' || unicode.In(r, idnaLetterDigits...) {
				continue
			}
			return fault.Invalid(field, ReasonHostInvalid,
				"%s has a symbol or punctuation mark in an internationalised label; only letters, digits, combining marks and '-' are allowed",
				field)
		}
	}
	return nil
}

// idnaLetterDigits are the general categories that IDNA 2008 (RFC 5892,
// section 2.1) admits in labels.
var idnaLetterDigits = []*unicode.RangeTable{
	unicode.Ll, unicode.Lu, unicode.Lo, unicode.Lm, unicode.Nd, unicode.Mn, unicode.Mc,
}

// validHostLabel reports whether label is a canonical ASCII DNS label.
func validHostLabel(label string) bool {
	if label == "" || len(label) > maxLabelLength {
		return false
	}
	for i := 0; i < len(label); i++ {
		c := label[i]
		if !('a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '-') {
			return false
		}
	}
	if label[0] == '-' || label[len(label)-1] == '-' {
		return false
	}
	if len(label) >= 4 && label[2] == '-' && label[3] == '-' && !strings.HasPrefix(label, "xn--") {
		return false
	}
	return true
}

// isNumericLabel reports whether a lower-case label is one that the WHATWG
// URL parser reads as an IPv4 number: decimal digits, or "0x" followed by
// hexadecimal digits (possibly none).
func isNumericLabel(label string) bool {
	digits, hex := label, false
	if rest, ok := strings.CutPrefix(label, "0x"); ok {
		digits, hex = rest, true
	} else if label == "" {
		return false
	}
	for i := 0; i < len(digits); i++ {
		c := digits[i]
		if '0' <= c && c <= '9' || hex && 'a' <= c && c <= 'f' {
			continue
		}
		return false
	}
	return true
}

func errHostEmpty(field string) error {
	return fault.Invalid(field, ReasonHostEmpty,
		"%s is empty; send a domain name such as acme.example.com", field)
}

func errHostIPLiteral(field string) error {
	return fault.Invalid(field, ReasonHostIPLiteral,
		"%s is an IP address; use a domain name such as acme.example.com", field)
}

func errHostTooLong(field string, n int) error {
	return fault.Invalid(field, ReasonHostTooLong,
		"%s is %d characters long as a domain name; at most %d are allowed", field, n, MaxHostLength)
}

// isASCII reports whether s has only ASCII characters.
func isASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= utf8.RuneSelf {
			return false
		}
	}
	return true
}

// ParseBaseDomains normalises the base domains of a configuration
// (TENANTRY_BASE_DOMAINS, read by the registry and identity alike, which
// must agree): it returns the valid ones, never nil, and the values that
// are not domain names.
func ParseBaseDomains(values []string) (domains, invalid []string) {
	domains = []string{}
	for _, d := range values {
		host, err := NormalizeHost("base-domains", d)
		if err != nil {
			invalid = append(invalid, d)
			continue
		}
		domains = append(domains, host)
	}
	return domains, invalid
}
