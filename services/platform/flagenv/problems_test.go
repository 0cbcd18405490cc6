package flagenv

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestProblems(t *testing.T) {
	t.Parallel()
	var p Problems
	require.NoError(t, p.Err())
	require.Equal(t, 30*time.Second, p.Duration("A_TTL", "30s", time.Second))
	require.Equal(t, 4, p.Int("A_N", "4", 1, 8))
	require.NoError(t, p.Err(), "good values record nothing")

	p.Duration("B_TTL", "soon", time.Second)
	p.Duration("C_TTL", "1ms", time.Second)
	p.Int("D_N", "99", 1, 8)
	p.Addf("E is wrong")
	err := p.Err()
	require.Error(t, err)
	for _, want := range []string{"B_TTL", "C_TTL", "D_N must be a number from 1 to 8", "E is wrong"} {
		require.ErrorContains(t, err, want)
	}
}

func TestListAndURLs(t *testing.T) {
	t.Parallel()
	require.Equal(t, []string{"a", "b=c"}, List(" a, ,b=c ,"))
	require.Nil(t, List(""))
	require.True(t, IsPostgresURL("postgres://h/db"))
	require.True(t, IsPostgresURL("postgresql://h/db"))
	require.False(t, IsPostgresURL("mysql://h/db"))
	require.False(t, IsPostgresURL("::"))
}
