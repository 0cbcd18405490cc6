package password

import (
	"errors"
	"fmt"
	"strings"
	"unicode"
	"unicode/utf8"

	"tenantry.dev/platform/fault"
)

// The reasons of the faults that Policy.Check returns. They are stable:
// clients match on them to show their own messages.
const (
	// ReasonTooShort: fewer characters than the policy's MinLength.
	ReasonTooShort = "PASSWORD_TOO_SHORT"
	// ReasonTooLong: more bytes than the policy's MaxLength.
	ReasonTooLong = "PASSWORD_TOO_LONG"
	// ReasonTooCommon: on the list of common passwords, ignoring case.
	ReasonTooCommon = "PASSWORD_TOO_COMMON"
	// ReasonTooSimilar: contains the account's username, email or name.
	ReasonTooSimilar = "PASSWORD_TOO_SIMILAR"
	// ReasonInvalid: not valid UTF-8, or contains control characters.
	ReasonInvalid = "PASSWORD_INVALID"
)

// Defaults of Policy for fields left zero.
const (
	// DefaultMinLength is NIST SP 800-63B's minimum length for a
	// password chosen by a person, in characters.
	DefaultMinLength = 8
	// DefaultMaxLength bounds what we hash, in bytes. It is far longer
	// than any password a person types or a manager generates, and short
	// enough that nobody makes us hash megabytes.
	DefaultMaxLength = 1024
)

// minSimilarInputLen is the shortest user input, in characters, that a
// password may not contain. Shorter names ("Al", "Jo") occur inside too
// many good passwords to forbid.
const minSimilarInputLen = 3

// Policy decides which passwords an account may choose. The zero value is
// the default policy.
type Policy struct {
	// MinLength is the least number of characters (Unicode code points,
	// as a person counts them, not bytes). Zero means DefaultMinLength.
	MinLength int
	// MaxLength is the most bytes of UTF-8. It counts bytes because it
	// bounds the work of hashing. Zero means DefaultMaxLength.
	MaxLength int
}

// minLength returns MinLength or its default.
func (p Policy) minLength() int {
	if p.MinLength <= 0 {
		return DefaultMinLength
	}
	return p.MinLength
}

// maxLength returns MaxLength or its default.
func (p Policy) maxLength() int {
	if p.MaxLength <= 0 {
		return DefaultMaxLength
	}
	return p.MaxLength
}

// Validate reports the problems of a configured policy, one error each,
// so that a bad configuration stops the service at start-up.
func (p Policy) Validate() error {
	var errs []error
	if p.MinLength < 0 || p.MaxLength < 0 {
		errs = append(errs, errors.New("password: policy lengths must not be negative"))
	}
	minLen, maxLen := p.minLength(), p.maxLength()
	if minLen < DefaultMinLength {
		errs = append(errs, fmt.Errorf("password: minimum length must be at least %d characters, not %d", DefaultMinLength, minLen))
	}
	// A character takes up to 4 bytes of UTF-8, so a maximum below four
	// times the minimum would refuse some passwords in non-Latin scripts
	// as both too short and too long.
	if maxLen < utf8.UTFMax*minLen {
		errs = append(errs, fmt.Errorf("password: maximum length must be at least %d bytes (%d characters of up to %d bytes), not %d", utf8.UTFMax*minLen, minLen, utf8.UTFMax, maxLen))
	}
	return errors.Join(errs...)
}

// Check returns nil if password may be chosen, or a fault.Invalid for
// field saying what to change. userInputs are the account's own words
// that the password must not contain, ignoring case: its username,
// display name and email address or the part before the "@" (for an email
// address both are checked). Inputs shorter than 3 characters are ignored.
//
// Lengths are counted as given, without Unicode normalisation: the
// password is hashed as given, so that is the string whose strength
// matters. The returned messages never contain the password or the
// inputs, since faults end up in logs.
func (p Policy) Check(field, password string, userInputs ...string) error {
	// Length in bytes first: it is O(1), and the checks below read the
	// whole string.
	if maxLen := p.maxLength(); len(password) > maxLen {
		return fault.Invalid(field, ReasonTooLong,
			"choose a password of at most %d bytes; it has %d (letters outside the basic Latin alphabet take 2 to 4 bytes each)",
			maxLen, len(password))
	}
	if !utf8.ValidString(password) {
		return fault.Invalid(field, ReasonInvalid, "the password is not valid UTF-8 text")
	}
	if strings.ContainsFunc(password, unicode.IsControl) {
		return fault.Invalid(field, ReasonInvalid,
			"choose a password without control characters such as tabs, line breaks or NUL")
	}
	if minLen, n := p.minLength(), utf8.RuneCountInString(password); n < minLen {
		return fault.Invalid(field, ReasonTooShort,
			"choose a password of at least %d characters; it has %d", minLen, n)
	}
	if isCommon(password) {
		return fault.Invalid(field, ReasonTooCommon,
			"choose a less common password; this one is among the most used passwords, which attackers try first")
	}
	if containsAny(strings.ToLower(password), userInputs) {
		return fault.Invalid(field, ReasonTooSimilar,
			"choose a password that does not contain your username, name or email address")
	}
	return nil
}

// containsAny reports whether lowered contains any of inputs of at least
// minSimilarInputLen characters, ignoring case; for an email address,
// the part before the "@" counts as an input too.
func containsAny(lowered string, inputs []string) bool {
	for _, input := range inputs {
		input = strings.ToLower(strings.TrimSpace(input))
		candidates := []string{input}
		if at := strings.LastIndexByte(input, '@'); at >= 0 {
			candidates = append(candidates, input[:at])
		}
		for _, c := range candidates {
			if utf8.RuneCountInString(c) >= minSimilarInputLen && strings.Contains(lowered, c) {
				return true
			}
		}
	}
	return false
}
