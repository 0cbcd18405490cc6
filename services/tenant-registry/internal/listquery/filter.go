package listquery

import (
	"fmt"
	"maps"
	"slices"
	"strings"
	"unicode/utf8"

	"tenantry.dev/platform/fault"
)

// Limits of a filter. Label keys and values follow the limits of Tenant.labels.
const (
	// MaxFilterLength is the longest filter accepted, in bytes.
	MaxFilterLength = 2048
	// MaxLabelKeyLength is the longest label key, in characters.
	MaxLabelKeyLength = 63
	// MaxLabelValueLength is the longest label value, in characters.
	MaxLabelValueLength = 255
)

// ReasonInvalidFilter is the reason of every fault for a filter that cannot
// be parsed.
const ReasonInvalidFilter = "INVALID_FILTER"

// filterField is the request field that a filter comes from.
const filterField = "filter"

// states are the tenant states a filter can ask for, by their names without
// the "STATE_" prefix.
var states = []string{"PROVISIONING", "ACTIVE", "SUSPENDED", "DELETED"}

// Filter is a parsed ListTenants filter: tenants match when they have every
// condition.
type Filter struct {
	// State is the state tenants must be in ("PROVISIONING", "ACTIVE",
	// "SUSPENDED" or "DELETED"), or "" for any state.
	State string
	// Labels are labels tenants must have, with exactly these values. It is
	// nil when the filter has no label condition.
	Labels map[string]string
}

// String returns the canonical spelling of f, which ParseFilter parses back
// into f: state first, then labels by key, joined by " AND ". Equivalent
// filters have one canonical spelling, so it is what FilterHash should be
// given.
func (f Filter) String() string {
	var b strings.Builder
	and := func() {
		if b.Len() > 0 {
			b.WriteString(" AND ")
		}
	}
	if f.State != "" {
		b.WriteString("state = ")
		b.WriteString(f.State)
	}
	for _, key := range slices.Sorted(maps.Keys(f.Labels)) {
		and()
		b.WriteString("labels.")
		b.WriteString(key)
		b.WriteString(" = ")
		writeQuoted(&b, f.Labels[key])
	}
	return b.String()
}

// writeQuoted writes s as a filter string, escaping only what the grammar
// requires.
func writeQuoted(b *strings.Builder, s string) {
	b.WriteByte('"')
	for i := 0; i < len(s); i++ {
		if s[i] == '"' || s[i] == '\\' {
			b.WriteByte('\\')
		}
		b.WriteByte(s[i])
	}
	b.WriteByte('"')
}

// ParseFilter parses a ListTenants filter; the empty filter (or one of only
// spaces) matches every tenant. Errors are INVALID_FILTER faults whose
// message gives the 1-based character position of the problem and what was
// expected there, e.g. `filter: at 7: expected "=" after "state"`.
func ParseFilter(s string) (Filter, error) {
	if len(s) > MaxFilterLength {
		return Filter{}, fault.Invalid(filterField, ReasonInvalidFilter,
			"filter: is %d bytes long; at most %d are allowed", len(s), MaxFilterLength)
	}
	p := &parser{src: s}
	if err := p.parse(); err != nil {
		return Filter{}, err
	}
	return p.filter, nil
}

// tokenKind tells the tokens of a filter apart.
type tokenKind int

const (
	tokenEnd    tokenKind = iota // the end of the filter
	tokenWord                    // a field, a state or AND: letters, digits, '_', '.', '-'
	tokenEquals                  // "="
	tokenString                  // a double-quoted string
)

// token is one token of a filter. For strings, text is the unescaped value.
type token struct {
	kind tokenKind
	text string
	pos  int // byte offset in the filter
}

// parser is a recursive-descent parser over a one-token lookahead.
type parser struct {
	src    string
	off    int // byte offset of the next unread character
	tok    token
	filter Filter
}

func (p *parser) parse() error {
	if err := p.next(); err != nil {
		return err
	}
	if p.tok.kind == tokenEnd {
		return nil
	}
	for {
		if err := p.condition(); err != nil {
			return err
		}
		if p.tok.kind == tokenEnd {
			return nil
		}
		if !p.isWord("AND") {
			return p.unexpected("expected \"AND\" or the end of the filter after a condition")
		}
		andEnd := p.tok.pos + len(p.tok.text)
		if err := p.next(); err != nil {
			return err
		}
		if p.tok.kind == tokenEnd {
			return p.errorf(andEnd, `expected a condition after "AND"`)
		}
	}
}

// condition parses one condition, starting at the current token.
func (p *parser) condition() error {
	if p.tok.kind != tokenWord {
		return p.unexpected(`expected a condition: state = ACTIVE or labels.KEY = "VALUE"`)
	}
	switch word := p.tok.text; {
	case word == "state":
		return p.stateCondition()
	case strings.HasPrefix(word, "labels."):
		return p.labelCondition()
	case word == "labels":
		return p.errorf(p.tok.pos, `expected a label key after "labels.", e.g. labels.tier = "gold"`)
	case strings.EqualFold(word, "state") || strings.HasPrefix(strings.ToLower(word), "labels."):
		return p.errorf(p.tok.pos, `field names are lower case: write "state" or "labels.KEY"`)
	default:
		return p.errorf(p.tok.pos, `unknown field %s; filter on "state" or "labels.KEY"`, quoteWord(word))
	}
}

func (p *parser) stateCondition() error {
	start := p.tok.pos
	if p.filter.State != "" {
		return p.errorf(start, `"state" may appear at most once`)
	}
	if err := p.expectEquals(`"state"`); err != nil {
		return err
	}
	if p.tok.kind != tokenWord {
		return p.unexpected(`expected a state (PROVISIONING, ACTIVE, SUSPENDED or DELETED) after "state ="`)
	}
	state := strings.TrimPrefix(strings.ToUpper(p.tok.text), "STATE_")
	if !slices.Contains(states, state) {
		return p.errorf(p.tok.pos, "unknown state %s; use PROVISIONING, ACTIVE, SUSPENDED or DELETED", quoteWord(p.tok.text))
	}
	p.filter.State = state
	return p.next()
}

func (p *parser) labelCondition() error {
	start := p.tok.pos
	key := strings.TrimPrefix(p.tok.text, "labels.")
	if !validLabelKey(key) {
		return p.errorf(start, "label key %s is not valid; a label key is 1 to %d characters of a-z, 0-9, '_', '-' and '.'",
			quoteWord(key), MaxLabelKeyLength)
	}
	if _, dup := p.filter.Labels[key]; dup {
		return p.errorf(start, "labels.%s may appear at most once", key)
	}
	field := fmt.Sprintf(`"labels.%s"`, key)
	if err := p.expectEquals(field); err != nil {
		return err
	}
	if p.tok.kind != tokenString {
		return p.unexpected(fmt.Sprintf(`expected a double-quoted value after "labels.%s =", e.g. labels.%s = "gold"`, key, key))
	}
	if n := utf8.RuneCountInString(p.tok.text); n > MaxLabelValueLength {
		return p.errorf(p.tok.pos, "label value is %d characters long; at most %d are allowed", n, MaxLabelValueLength)
	}
	if p.filter.Labels == nil {
		p.filter.Labels = make(map[string]string)
	}
	p.filter.Labels[key] = p.tok.text
	return p.next()
}

// expectEquals reads the "=" that must follow the field at the current
// token, and the token after it.
func (p *parser) expectEquals(field string) error {
	if err := p.next(); err != nil {
		return err
	}
	if p.tok.kind != tokenEquals {
		return p.unexpected(fmt.Sprintf(`expected "=" after %s`, field))
	}
	return p.next()
}

// isWord reports whether the current token is the keyword w, in any case.
func (p *parser) isWord(w string) bool {
	return p.tok.kind == tokenWord && strings.EqualFold(p.tok.text, w)
}

// unexpected reports that the current token is not what was expected,
// adding hints for what people coming from fuller filter languages write.
func (p *parser) unexpected(expected string) error {
	switch {
	case p.isWord("OR"):
		return p.errorf(p.tok.pos, "OR is not supported; only AND can join conditions")
	case p.isWord("NOT"):
		return p.errorf(p.tok.pos, "NOT is not supported; only conditions of the form field = value")
	}
	return p.errorf(p.tok.pos, "%s, found %s", expected, p.describe())
}

// describe names the current token for an error message. Words are quoted,
// and shortened, since they consist only of safe characters; strings are not
// repeated.
func (p *parser) describe() string {
	switch p.tok.kind {
	case tokenEnd:
		return "the end of the filter"
	case tokenEquals:
		return `"="`
	case tokenString:
		return "a string"
	default:
		return quoteWord(p.tok.text)
	}
}

// next reads the token at p.off into p.tok.
func (p *parser) next() error {
	for p.off < len(p.src) && isSpace(p.src[p.off]) {
		p.off++
	}
	start := p.off
	if start == len(p.src) {
		p.tok = token{kind: tokenEnd, pos: start}
		return nil
	}
	switch c := p.src[start]; {
	case isWordByte(c):
		for p.off < len(p.src) && isWordByte(p.src[p.off]) {
			p.off++
		}
		p.tok = token{kind: tokenWord, text: p.src[start:p.off], pos: start}
		return nil
	case c == '=':
		if strings.HasPrefix(p.src[start:], "==") {
			return p.errorf(start, `use "=" to compare, not "=="`)
		}
		p.off++
		p.tok = token{kind: tokenEquals, text: "=", pos: start}
		return nil
	case c == '"':
		return p.readString()
	case c == '\'':
		return p.errorf(start, `strings are written in double quotes: "VALUE"`)
	case c == '(' || c == ')':
		return p.errorf(start, "parentheses are not supported; join conditions with AND")
	case strings.IndexByte("!<>:~", c) >= 0:
		return p.errorf(start, `only "=" comparisons are supported`)
	case c >= ' ' && c < utf8.RuneSelf:
		return p.errorf(start, "unexpected character %q", c)
	default:
		// Control and non-ASCII characters are not repeated: they could
		// garble the message or make it mislead.
		return p.errorf(start, "unexpected character; outside strings a filter is ASCII letters, digits, '_', '.', '-', '=' and spaces")
	}
}

// readString reads a double-quoted string starting at p.off.
func (p *parser) readString() error {
	start := p.off
	var b strings.Builder
	for i := start + 1; i < len(p.src); i++ {
		switch c := p.src[i]; c {
		case '"':
			value := b.String()
			if !utf8.ValidString(value) {
				return p.errorf(start, "string is not valid UTF-8")
			}
			p.off = i + 1
			p.tok = token{kind: tokenString, text: value, pos: start}
			return nil
		case '\\':
			if i+1 < len(p.src) && (p.src[i+1] == '"' || p.src[i+1] == '\\') {
				i++
				b.WriteByte(p.src[i])
				continue
			}
			return p.errorf(i, `unknown escape in string; only \" and \\ are allowed`)
		case 0:
			// PostgreSQL text cannot hold NUL, so no label value has one.
			return p.errorf(i, "strings must not contain NUL characters")
		default:
			b.WriteByte(c)
		}
	}
	return p.errorf(start, `string is not terminated; end it with '"'`)
}

// errorf returns an INVALID_FILTER fault for the problem at byte offset off.
// The position is given in characters, counting from 1, as an editor shows it.
func (p *parser) errorf(off int, format string, args ...any) error {
	pos := utf8.RuneCountInString(p.src[:off]) + 1
	return fault.Invalid(filterField, ReasonInvalidFilter, "filter: at %d: %s", pos, fmt.Sprintf(format, args...))
}

func isSpace(c byte) bool {
	return c == ' ' || c == '\t' || c == '\n' || c == '\r'
}

func isWordByte(c byte) bool {
	return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '_' || c == '.' || c == '-'
}

// validLabelKey reports whether key is a label key: 1 to 63 characters of
// a-z, 0-9, '_', '-' and '.'.
func validLabelKey(key string) bool {
	if key == "" || len(key) > MaxLabelKeyLength {
		return false
	}
	for i := 0; i < len(key); i++ {
		c := key[i]
		if !('a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '_' || c == '-' || c == '.') {
			return false
		}
	}
	return true
}

// quoteWord quotes a word of the filter for an error message, shortened so
// that a long word does not drown the message.
func quoteWord(w string) string {
	const limit = 40
	if len(w) > limit {
		return fmt.Sprintf("%q...", w[:limit])
	}
	return fmt.Sprintf("%q", w)
}
