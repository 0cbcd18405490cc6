package server_test

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// The README's registry curl lines (port 8081) run as written, against
// this test's registry; identity's tests run the others.
func TestReadmeRESTTour(t *testing.T) {
	t.Parallel()
	if _, err := exec.LookPath("curl"); err != nil {
		t.Skip("curl is not installed")
	}
	root, err := filepath.Abs("../../../..")
	require.NoError(t, err)
	readme, err := os.ReadFile(filepath.Join(root, "README.md"))
	require.NoError(t, err)
	_, after, ok := strings.Cut(string(readme), "<!-- rest-tour -->\n```sh\n")
	require.True(t, ok, "README.md has no REST tour")
	block, _, ok := strings.Cut(after, "```")
	require.True(t, ok)

	r := startRegistry(t, "")
	addr := r.app.HTTPAddr().String()
	ran := 0
	for _, line := range strings.Split(block, "\n") {
		if !strings.HasPrefix(line, "curl ") || !strings.Contains(line, "localhost:8081") {
			continue
		}
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
