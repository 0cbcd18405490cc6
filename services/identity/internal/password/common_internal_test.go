package password

import (
	"testing"

	"github.com/stretchr/testify/require"
)

func TestCommonPasswords(t *testing.T) {
	t.Parallel()

	t.Run("the list holds zxcvbn's 30,000 common passwords", func(t *testing.T) {
		t.Parallel()
		require.Len(t, commonPasswords(), 30000)
	})
	t.Run("the usual suspects are on the list", func(t *testing.T) {
		t.Parallel()
		for _, p := range []string{"password", "12345678", "qwerty123", "iloveyou", "letmein1", "password1", "trustno1", "sunshine"} {
			require.True(t, isCommon(p), p)
		}
	})
	t.Run("a passphrase is not on the list", func(t *testing.T) {
		t.Parallel()
		require.False(t, isCommon("correct horse battery staple"))
	})
}
