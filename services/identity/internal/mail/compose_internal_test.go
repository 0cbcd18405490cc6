package mail

import (
	"bytes"
	"mime"
	netmail "net/mail"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestWriteHeaderFoldsReversibly(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, value string
	}{
		{"a short value stays on one line", "Verify your email"},
		{"a long ASCII value folds at spaces", strings.Repeat("word ", 40) + "end"},
		{"double spaces survive", "a  b" + strings.Repeat(" word", 30)},
		{"a leading space survives", " lead" + strings.Repeat(" word", 30)},
		{"a word longer than a line is kept whole", strings.Repeat("x", 100) + " y"},
		{"encoded words fold between words", "=?utf-8?q?" + strings.Repeat("a", 60) + "?= =?utf-8?q?" + strings.Repeat("b", 60) + "?="},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			var b bytes.Buffer
			require.NoError(t, writeHeader(&b, "Subject", tt.value))
			out := b.String()
			require.True(t, strings.HasSuffix(out, "\r\n"))
			lines := strings.Split(strings.TrimSuffix(out, "\r\n"), "\r\n")
			for i, line := range lines {
				require.NotEmpty(t, strings.TrimSpace(line), "line %d is whitespace only", i)
				if i > 0 {
					require.True(t, strings.HasPrefix(line, " "), "continuation line %d starts with a space", i)
				}
				if !strings.Contains(line, strings.Repeat("x", 100)) {
					require.LessOrEqual(t, len(line), maxLineLength, "line %q", line)
				}
			}
			require.Equal(t, "Subject: "+tt.value, strings.Join(lines, ""), "unfolding gives the value back")
		})
	}
}

func TestWriteHeaderRefusesLineBreaks(t *testing.T) {
	t.Parallel()
	for _, value := range []string{"a\r\nBcc: x@y", "a\nBcc: x@y", "a\rBcc: x@y"} {
		var b bytes.Buffer
		require.ErrorIs(t, writeHeader(&b, "Subject", value), ErrInvalidMessage)
		require.Zero(t, b.Len(), "nothing written")
	}
}

// A subject may name a tenant whose display name predates the rule against
// direction controls, in a row enqueued back then: the header never carries
// them.
func TestComposeDropsDirectionControlsFromTheSubject(t *testing.T) {
	t.Parallel()
	tests := []struct{ name, subject, want string }{
		{"a right-to-left override", "Confirm your email address for Evil\u202emoc.elgoog", "Confirm your email address for Evilmoc.elgoog"},
		{"isolates and marks", "Welcome to \u2067Acme\u2069\u200e\u200f\u061c", "Welcome to Acme"},
		{"embeddings", "Welcome to \u202aA\u202bc\u202cme\u202d", "Welcome to Acme"},
		{"nothing to drop", "Welcome to Zoë's \u2764\ufe0f", "Welcome to Zoë's \u2764\ufe0f"},
	}
	from := &netmail.Address{Address: "noreply@example.com"}
	to := &netmail.Address{Address: "ann@example.com"}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			m := Message{ID: "0190a5b4-7c1e-7d2a-8b3c-4d5e6f708192", Tenant: "acme", Kind: "welcome", To: to.Address, Subject: tt.subject, Text: "Hello"}
			m, _, err := validate(m)
			require.NoError(t, err, "the row is valid, as rows written before the rule are")
			raw, err := compose(m, from, to, time.Unix(0, 0))
			require.NoError(t, err)
			parsed, err := netmail.ReadMessage(bytes.NewReader(raw))
			require.NoError(t, err)
			subject, err := new(mime.WordDecoder).DecodeHeader(parsed.Header.Get("Subject"))
			require.NoError(t, err)
			require.Equal(t, tt.want, subject)
		})
	}
}
