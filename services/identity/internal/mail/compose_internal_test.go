package mail

import (
	"bytes"
	"strings"
	"testing"

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
