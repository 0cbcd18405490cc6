package main

import (
	"testing"

	"github.com/stretchr/testify/require"
)

// The placements commands show and change placement policy, and a create
// with nowhere to go says why.
func TestCLIPlacements(t *testing.T) {
	t.Parallel()
	addr, _ := startRegistry(t)
	cmd := combined(operatorCLI(addr))
	steps := []struct {
		name string
		args []string
		code int
		want string
	}{
		{"a tenant to count", []string{"tenants", "create", "counted"}, 0, "placement default"},
		{"list", []string{"placements", "list"}, 0, "default    open    1"},
		{"close the only placement", []string{"placements", "update", "default", "--closed"}, 0, "closed"},
		{"a tenant has nowhere to go", []string{"tenants", "create", "homeless"}, 1, "NO_OPEN_PLACEMENT"},
		{"naming it does not help", []string{"tenants", "create", "homeless", "--placement", "default"}, 1, "PLACEMENT_CLOSED"},
		{"dedicate it: it holds one tenant", []string{"placements", "update", "default", "--dedicated"}, 0, "closed, dedicated"},
		{"reopen it, still dedicated", []string{"placements", "update", "default", "--closed=false"}, 0, "open, dedicated"},
		{"the dedicated placement is taken", []string{"tenants", "create", "second", "--placement", "default"}, 1, "PLACEMENT_DEDICATED_TAKEN"},
		{"share it again", []string{"placements", "update", "default", "--dedicated=false"}, 0, "open"},
		{"get", []string{"placements", "get", "default"}, 0, "(the registry's)"},
		{"an update that changes nothing", []string{"placements", "update", "default"}, 2, "say what to change"},
		{"an unknown placement", []string{"placements", "get", "mars"}, 1, "PLACEMENT_NOT_FOUND"},
	}
	for _, s := range steps {
		code, out := cmd(s.args...)
		require.Equal(t, s.code, code, "%s: %s", s.name, out)
		require.Contains(t, out, s.want, s.name)
	}
}
