package flagenv

import (
	"testing"

	"github.com/stretchr/testify/require"
)

func TestParse(t *testing.T) {
	t.Parallel()
	env := map[string]string{"APP_ADDR": "from-env", "APP_DEBUG": "true", "APP_BAD": "not-a-bool"}
	lookup := func(k string) (string, bool) { v, ok := env[k]; return v, ok }

	t.Run("the command line wins over the environment", func(t *testing.T) {
		s := New("app", lookup)
		var addr string
		s.String(&addr, "addr", "APP_ADDR", "default", "address")
		require.NoError(t, s.Parse([]string{"-addr", "from-flag"}))
		require.Equal(t, "from-flag", addr)
	})
	t.Run("the environment wins over the default", func(t *testing.T) {
		s := New("app", lookup)
		var addr string
		var debug bool
		s.String(&addr, "addr", "APP_ADDR", "default", "address")
		s.Bool(&debug, "debug", "APP_DEBUG", false, "debug")
		require.NoError(t, s.Parse(nil))
		require.Equal(t, "from-env", addr)
		require.True(t, debug)
	})
	t.Run("the default applies when neither is set", func(t *testing.T) {
		s := New("app", lookup)
		var name string
		s.String(&name, "name", "APP_NAME", "default", "name")
		require.NoError(t, s.Parse(nil))
		require.Equal(t, "default", name)
	})
	t.Run("a bad environment value names its variable", func(t *testing.T) {
		s := New("app", lookup)
		var b bool
		s.Bool(&b, "bad", "APP_BAD", false, "bad")
		err := s.Parse(nil)
		require.ErrorContains(t, err, "APP_BAD")
	})
}

func TestEnvVars(t *testing.T) {
	t.Parallel()
	s := New("app", func(string) (string, bool) { return "", false })
	var addr string
	var debug bool
	s.String(&addr, "grpc-addr", "APP_GRPC_ADDR", "", "address")
	s.Bool(&debug, "debug", "", false, "no variable")
	require.Equal(t, map[string]string{"grpc-addr": "APP_GRPC_ADDR"}, s.EnvVars(), "a flag without a variable is left out")
}
