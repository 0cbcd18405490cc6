package mail

import (
	"context"
	"fmt"
	netmail "net/mail"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/google/uuid"
)

// Limits on message fields. They keep header lines within RFC 5322's 998
// characters and stop a runaway template from filling the outbox.
const (
	maxAddressBytes   = 320 // an address with a display name; the address itself is at most 254
	maxSubjectBytes   = 900
	maxBodyBytes      = 1 << 20
	maxLabelBytes     = 200 // Tenant and Kind
	maxDedupeKeyBytes = 500
)

// Message is one email as the outbox stores it.
type Message struct {
	// ID identifies the mail. It becomes the outbox row's id and the
	// Message-ID header, <ID@tenantry>, so a resent copy is recognisably the
	// same mail. Enqueue fills it with a new UUID when empty.
	ID string
	// Tenant is the tenant the mail is sent for, for logs and inspection.
	Tenant string
	// Kind names the template, such as "verify_email" or "password_reset",
	// for logs and inspection.
	Kind string
	// To is the recipient: one address, optionally with a display name
	// ("Zoë Example <zoe@example.com>"). Only ASCII addresses are accepted,
	// since delivery does not rely on the SMTPUTF8 extension.
	To string
	// Subject is the subject line in UTF-8, without line breaks.
	Subject string
	// Text is the plain-text body in UTF-8. It is required.
	Text string
	// HTML is an optional HTML body; with it the mail is
	// multipart/alternative.
	HTML string
	// DedupeKey, when set, names the event that caused the mail: a second
	// Enqueue with the same key for the same tenant does nothing.
	DedupeKey string
}

// Sender delivers one message. Implementations must be safe for concurrent
// use. A failure that retrying cannot fix wraps ErrPermanent; any other
// failure is retried later.
type Sender interface {
	// Send delivers m, or returns why it could not.
	Send(ctx context.Context, m Message) error
}

// invalid returns an ErrInvalidMessage error about one field.
func invalid(field, format string, args ...any) error {
	return fmt.Errorf("%w: %s %s", ErrInvalidMessage, field, fmt.Sprintf(format, args...))
}

// validate checks m and returns it with its ID in canonical form and its
// parsed recipient. The checks run both when a mail is enqueued and when it
// is sent, so a row written by other means still cannot inject headers.
func validate(m Message) (Message, *netmail.Address, error) {
	id, err := uuid.Parse(m.ID)
	if err != nil {
		return m, nil, invalid("id", "must be a UUID")
	}
	m.ID = id.String()

	for _, f := range []struct {
		name, value string
		max         int
	}{
		{"tenant", m.Tenant, maxLabelBytes},
		{"kind", m.Kind, maxLabelBytes},
		{"to", m.To, maxAddressBytes},
		{"subject", m.Subject, maxSubjectBytes},
	} {
		if f.value == "" {
			return m, nil, invalid(f.name, "is empty")
		}
		if err := checkHeaderText(f.name, f.value, f.max); err != nil {
			return m, nil, err
		}
	}
	to, err := parseAddress(m.To)
	if err != nil {
		return m, nil, invalid("to", "is not one email address: %v", err)
	}

	if m.Text == "" {
		return m, nil, invalid("text", "is empty")
	}
	for _, f := range []struct{ name, value string }{
		{"text", m.Text}, {"html", m.HTML}, {"dedupe_key", m.DedupeKey},
	} {
		if err := checkText(f.name, f.value); err != nil {
			return m, nil, err
		}
	}
	if len(m.DedupeKey) > maxDedupeKeyBytes {
		return m, nil, invalid("dedupe_key", "is longer than %d bytes", maxDedupeKeyBytes)
	}
	return m, to, nil
}

// parseAddress parses one ASCII address with an optional display name. The
// caller has already refused control characters.
func parseAddress(s string) (*netmail.Address, error) {
	a, err := netmail.ParseAddress(s)
	if err != nil {
		return nil, err
	}
	if len(a.Address) > 254 {
		return nil, fmt.Errorf("address is longer than 254 bytes")
	}
	for i := range len(a.Address) {
		if a.Address[i] >= utf8.RuneSelf {
			return nil, fmt.Errorf("address is not ASCII")
		}
	}
	return a, nil
}

// checkHeaderText refuses what could break out of a header line: control
// characters (CR and LF above all, but also NUL, TAB and C1 controls such as
// NEL) and the Unicode line and paragraph separators, which some mail
// clients treat as line breaks.
func checkHeaderText(field, s string, maxBytes int) error {
	if len(s) > maxBytes {
		return invalid(field, "is longer than %d bytes", maxBytes)
	}
	if !utf8.ValidString(s) {
		return invalid(field, "is not valid UTF-8")
	}
	if i := strings.IndexFunc(s, func(r rune) bool {
		return unicode.IsControl(r) || r == '\u2028' || r == '\u2029'
	}); i >= 0 {
		return invalid(field, "contains a line break or control character")
	}
	return nil
}

// checkText refuses bodies PostgreSQL cannot store (NUL, invalid UTF-8) and
// oversized ones.
func checkText(field, s string) error {
	if len(s) > maxBodyBytes {
		return invalid(field, "is longer than %d bytes", maxBodyBytes)
	}
	if !utf8.ValidString(s) {
		return invalid(field, "is not valid UTF-8")
	}
	if strings.IndexByte(s, 0) >= 0 {
		return invalid(field, "contains a NUL byte")
	}
	return nil
}
