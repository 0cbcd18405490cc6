package readmetour_test

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"tenantry.dev/platform/readmetour"
)

func TestLines(t *testing.T) {
	t.Parallel()
	lines, err := readmetour.Lines("cli-tour", func(l string) bool { return strings.HasPrefix(l, "bin/tenantry ") })
	require.NoError(t, err)
	require.NotEmpty(t, lines)
	_, err = readmetour.Lines("no-such-tour", nil)
	require.ErrorContains(t, err, "no tour")
	_, err = readmetour.Lines("cli-tour", func(string) bool { return false })
	require.ErrorContains(t, err, "no line")
	_, err = readmetour.Lines("kit-replace", nil)
	require.ErrorContains(t, err, "not ```sh", "a block of file lines is not a tour of commands")
}

func TestBlock(t *testing.T) {
	t.Parallel()
	info, text, err := readmetour.Block("kit-replace")
	require.NoError(t, err)
	require.Empty(t, info)
	require.Contains(t, text, "replace (")
	require.NotContains(t, text, "```")
	info, text, err = readmetour.Block("cli-tour")
	require.NoError(t, err)
	require.Equal(t, "sh", info)
	require.True(t, strings.HasPrefix(text, "bin/tenantry "), "the text starts after the fence's line: %q", text)
	_, _, err = readmetour.Block("no-such-tour")
	require.ErrorContains(t, err, "no tour")
}
