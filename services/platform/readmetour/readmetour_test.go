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
}
