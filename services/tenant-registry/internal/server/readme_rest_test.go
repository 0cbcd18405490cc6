package server_test

import (
	"encoding/json"
	"os"
	"os/exec"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"tenantry.dev/platform/readmetour"
)

// The README's registry curl lines (port 8081) run as written, against
// this test's registry; identity's tests run the others.
func TestReadmeRESTTour(t *testing.T) {
	t.Parallel()
	if _, err := exec.LookPath("curl"); err != nil {
		t.Skip("curl is not installed")
	}
	lines, err := readmetour.Lines("rest-tour", func(l string) bool {
		return strings.HasPrefix(l, "curl ") && strings.Contains(l, "localhost:8081")
	})
	require.NoError(t, err)

	r := startRegistry(t, "")
	addr := r.app.HTTPAddr().String()
	for i := range lines {
		lines[i] = strings.ReplaceAll(lines[i], "localhost:8081", addr)
	}
	// Only what a newcomer has exported after make run: the tour creates
	// its own tenant.
	env := []string{"PATH=" + os.Getenv("PATH"), "TENANTRY_OPERATOR_TOKEN=" + operatorToken, "TENANTRY_SERVICE_TOKEN=" + serviceToken}
	outputs, err := readmetour.Run(t.TempDir(), env, lines)
	require.NoError(t, err)
	for i, out := range outputs {
		var answer map[string]any
		require.NoError(t, json.Unmarshal([]byte(out), &answer), "%s\n%s", lines[i], out)
		require.NotContains(t, answer, "code", "an error: %s\n%s", lines[i], out)
		require.Contains(t, out, "globex", "%s\n%s", lines[i], out)
	}
	require.NotEmpty(t, outputs, "the README's REST tour has no registry lines")
}
