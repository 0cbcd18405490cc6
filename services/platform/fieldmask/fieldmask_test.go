package fieldmask

import (
	"testing"

	"github.com/stretchr/testify/require"
)

func TestPaths(t *testing.T) {
	t.Parallel()
	require.Equal(t,
		[]string{"display_name", "display_name", "labels", "*", "user.display_name", "password_min_length"},
		Paths([]string{"displayName", "display_name", "labels", "*", "user.displayName", "passwordMinLength"}))
	require.Empty(t, Paths(nil))
}
