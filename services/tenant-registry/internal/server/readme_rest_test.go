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
	ran := 0
	for _, line := range lines {
		cmd := exec.Command("bash", "-c", strings.ReplaceAll(line, "localhost:8081", addr))
		cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "TENANTRY_OPERATOR_TOKEN=" + operatorToken, "TENANTRY_SERVICE_TOKEN=" + serviceToken}
		out, err := cmd.CombinedOutput()
		require.NoError(t, err, "%s\n%s", line, out)
		var answer map[string]any
		require.NoError(t, json.Unmarshal(out, &answer), "%s\n%s", line, out)
		require.NotContains(t, answer, "code", "an error: %s\n%s", line, out)
		require.Contains(t, string(out), "acme", "%s\n%s", line, out)
		ran++
	}
	require.NotZero(t, ran, "the README's REST tour has no registry lines")
}
