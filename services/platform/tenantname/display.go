package tenantname

import (
	"strings"
	"unicode"
	"unicode/utf8"

	"tenantry.dev/platform/fault"
)

// MaxDisplayNameLength is the length of the longest display name, in
// characters (Unicode code points).
const MaxDisplayNameLength = 200

// ValidateDisplayName checks a name that people read: the display name of a
// tenant or of a user. Both services call it, so a name means the same thing
// wherever it is shown. The empty name is valid (callers that require a name
// check that themselves); any other name must be one line of valid UTF-8 of
// at most MaxDisplayNameLength characters that
//
//   - has no control characters and no line or paragraph separators, which
//     act as line breaks in email headers and logs;
//   - has no text direction controls (the embeddings, overrides and isolates
//     U+202A–U+202E and U+2066–U+2069, the marks U+200E, U+200F and U+061C),
//     which make text read differently from how it is stored: a tenant named
//     "Evil\u202Emoc.elgoog" shows in a mail subject as "Evilgoogle.com";
//   - has at least one visible character, so that a name of zero-width
//     spaces, joiners, byte order marks, fillers or spaces cannot pass for
//     no name or for another tenant's;
//   - does not start or end with a space.
//
// Joiners and variation selectors inside a name stay allowed: scripts such
// as Persian and Devanagari and emoji sequences need them. field is the
// request field path reported in the error; every refusal is a fault.Invalid
// with ReasonDisplayNameInvalid or ReasonDisplayNameTooLong.
func ValidateDisplayName(field, name string) error {
	if name == "" {
		return nil
	}
	if !utf8.ValidString(name) {
		return fault.Invalid(field, ReasonDisplayNameInvalid,
			"%s is not valid UTF-8; send the name as UTF-8 text", field)
	}
	if n := utf8.RuneCountInString(name); n > MaxDisplayNameLength {
		return fault.Invalid(field, ReasonDisplayNameTooLong,
			"%s has %d characters; at most %d are allowed", field, n, MaxDisplayNameLength)
	}
	visible := false
	pos := 0
	for _, r := range name {
		pos++
		switch {
		case isLineBreakOrControl(r):
			return fault.Invalid(field, ReasonDisplayNameInvalid,
				"%s has a control character or line break at position %d; a display name is one line of text", field, pos)
		case isDirectionControl(r):
			return fault.Invalid(field, ReasonDisplayNameInvalid,
				"%s has a text direction control (such as a right-to-left override) at position %d; remove it: every letter is shown in its own direction without it",
				field, pos)
		case isVisible(r):
			visible = true
		}
	}
	if !visible {
		return fault.Invalid(field, ReasonDisplayNameInvalid,
			"%s has no visible character, only spaces or invisible characters (such as zero-width spaces); use letters, digits or symbols, or leave it empty",
			field)
	}
	first, _ := utf8.DecodeRuneInString(name)
	last, _ := utf8.DecodeLastRuneInString(name)
	if unicode.IsSpace(first) || unicode.IsSpace(last) {
		return fault.Invalid(field, ReasonDisplayNameInvalid,
			"%s starts or ends with a space; remove it", field)
	}
	return nil
}

// SanitizeDisplayText removes from s what ValidateDisplayName refuses
// anywhere in a name: invalid UTF-8, control characters, line and paragraph
// separators and text direction controls. Use it where text that did not
// pass ValidateDisplayName may be shown, such as a name stored before the
// rules were this strict going into an email subject: what is left cannot
// break a line or reorder what surrounds it. It does not make the text a
// valid name (it may be empty, invisible or too long); check that with
// ValidateDisplayName where it matters.
func SanitizeDisplayText(s string) string {
	if utf8.ValidString(s) && !strings.ContainsFunc(s, isUnsafeInText) {
		return s
	}
	var b strings.Builder
	b.Grow(len(s))
	for _, r := range strings.ToValidUTF8(s, "") {
		if !isUnsafeInText(r) {
			b.WriteRune(r)
		}
	}
	return b.String()
}

// isUnsafeInText reports the characters SanitizeDisplayText removes.
func isUnsafeInText(r rune) bool {
	return isLineBreakOrControl(r) || isDirectionControl(r)
}

// isLineBreakOrControl reports control characters (C0, DEL and C1, which
// include CR, LF and NEL) and the Unicode line and paragraph separators.
func isLineBreakOrControl(r rune) bool {
	return unicode.IsControl(r) || r == '\u2028' || r == '\u2029'
}

// isDirectionControl reports the explicit bidirectional formatting
// characters of Unicode's bidi algorithm (UAX #9, section 2): embeddings and
// overrides, their terminator, isolates, and the implicit direction marks.
func isDirectionControl(r rune) bool {
	switch {
	case r >= '\u202A' && r <= '\u202E': // LRE, RLE, PDF, LRO, RLO
		return true
	case r >= '\u2066' && r <= '\u2069': // LRI, RLI, FSI, PDI
		return true
	case r == '\u200E' || r == '\u200F' || r == '\u061C': // LRM, RLM, ALM
		return true
	}
	return false
}

// isVisible reports whether r draws something on its own: a letter, digit,
// punctuation mark or symbol that is not a space, not invisible (see
// isInvisible; Hangul fillers are letters that draw nothing) and not the
// blank braille pattern, a symbol commonly used as an empty-looking name.
// Combining marks are not visible on their own: they only decorate the
// character before them.
func isVisible(r rune) bool {
	return unicode.In(r, unicode.L, unicode.N, unicode.P, unicode.S) &&
		!isInvisible(r) && r != '\u2800'
}
