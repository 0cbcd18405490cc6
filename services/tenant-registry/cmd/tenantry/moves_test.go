package main

import (
	"encoding/json"
	"testing"

	"github.com/stretchr/testify/require"

	"tenantry.dev/platform/pgtest"
)

// TestCLIMove moves a tenant to a second placement (another database of
// the test cluster) and back, waiting for the first move and following the
// second with 'operations wait'; bad command lines and refusals say why.
func TestCLIMove(t *testing.T) {
	t.Parallel()
	addr, _ := startRegistry(t, "-placements", "second="+pgtest.NewDatabase(t))
	cmd := operatorCLI(addr)
	code, out, errOut := cmd("tenants", "create", "acme", "--placement", "default")
	require.Equal(t, 0, code, out+errOut)

	for _, s := range []struct {
		name string
		args []string
		code int
		want string
	}{
		{"no placement named", []string{"tenants", "move", "acme"}, 2, "takes 2 argument(s)"},
		{"a grace that is no duration", []string{"tenants", "move", "acme", "second", "--grace", "soon"}, 2, "invalid value"},
		{"where it already is", []string{"tenants", "move", "acme", "default"}, 1, "MOVE_SAME_PLACEMENT"},
		{"an unknown placement", []string{"tenants", "move", "acme", "mars"}, 1, "PLACEMENT_UNKNOWN"},
		{"an unknown tenant", []string{"tenants", "move", "nobody", "second"}, 1, "TENANT_NOT_FOUND"},
		{"a grace over 30 days", []string{"tenants", "move", "acme", "second", "--grace", "800h"}, 1, "MOVE_GRACE_INVALID"},
	} {
		code, out, errOut := cmd(s.args...)
		require.Equal(t, s.code, code, "%s: %s%s", s.name, out, errOut)
		require.Contains(t, out+errOut, s.want, s.name)
	}

	// Waits until the tenant serves from second; the old copy is kept
	// for the hour asked.
	code, out, errOut = cmd("tenants", "move", "acme", "second", "--grace", "1h")
	require.Equal(t, 0, code, out+errOut)
	require.Contains(t, errOut, "acme: default → second", "progress on stderr")
	require.Regexp(t, `phase\s+switched`, out)
	require.Regexp(t, `placement\s+default → second`, out)
	require.Regexp(t, `writes fenced\s+\S+`, out)
	require.Regexp(t, `old copy kept until\s+\S+`, out)
	code, out, errOut = cmd("tenants", "get", "acme")
	require.Equal(t, 0, code, out+errOut)
	require.Contains(t, out, "(placement second)")

	// Back, without waiting; then followed by the operation's name, with
	// the old copy dropped at once.
	code, out, errOut = cmd("--output", "json", "tenants", "move", "acme", "default", "--grace", "0s", "--no-wait")
	require.Equal(t, 0, code, out+errOut)
	var op struct {
		Name         string `json:"name"`
		MoveMetadata struct {
			TargetPlacement string `json:"targetPlacement"`
		} `json:"moveMetadata"`
	}
	require.NoError(t, json.Unmarshal([]byte(out), &op), out)
	require.Equal(t, "default", op.MoveMetadata.TargetPlacement)
	code, out, errOut = cmd("operations", "wait", op.Name)
	require.Equal(t, 0, code, out+errOut)
	require.Regexp(t, `placement\s+second → default`, out)
	require.Regexp(t, `phase\s+(switched|done)`, out)
	code, out, errOut = cmd("tenants", "get", "acme")
	require.Equal(t, 0, code, out+errOut)
	require.Contains(t, out, "(placement default)")

	code, out, errOut = cmd("operations", "list")
	require.Equal(t, 0, code, out+errOut)
	require.Contains(t, out, "acme: default → second")
	require.Contains(t, out, "acme: second → default")
}
