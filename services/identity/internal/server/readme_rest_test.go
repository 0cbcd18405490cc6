package server_test

import (
	"encoding/json"
	"os"
	"os/exec"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"tenantry.dev/kit/registrytest"
	"tenantry.dev/platform/readmetour"
)

// readmeRESTTour returns the curl lines of the README's REST tour that
// call identity (port 8080); the registry's tests run the others.
func readmeRESTTour(t *testing.T) []string {
	t.Helper()
	lines, err := readmetour.Lines("rest-tour", func(l string) bool {
		return strings.HasPrefix(l, "curl ") && strings.Contains(l, "localhost:8080")
	})
	require.NoError(t, err)
	require.NotEmpty(t, lines)
	return lines
}

// The README's identity curl lines run as written, with this test's HTTP
// port in place of 8080.
func TestReadmeRESTTour(t *testing.T) {
	t.Parallel()
	if _, err := exec.LookPath("curl"); err != nil {
		t.Skip("curl is not installed")
	}
	s := startSystem(t, "demo")
	_, port, _ := strings.Cut(s.identity.HTTPAddr().String(), ":")
	env := map[string]string{"TENANTRY_OPERATOR_TOKEN": registrytest.OperatorToken}
	for _, line := range readmeRESTTour(t) {
		cmd := exec.Command("bash", "-c", strings.ReplaceAll(line, "localhost:8080", "localhost:"+port))
		cmd.Env = append(registrytest.CleanEnv(), "PATH="+os.Getenv("PATH"))
		for k, v := range env {
			cmd.Env = append(cmd.Env, k+"="+v)
		}
		out, err := cmd.CombinedOutput()
		require.NoError(t, err, "%s\n%s", line, out)
		var answer map[string]any
		require.NoError(t, json.Unmarshal(out, &answer), "%s\n%s", line, out)
		require.NotContains(t, answer, "code", "an error: %s\n%s", line, out)
		switch {
		case strings.Contains(line, "/v1/auth:login"):
			token, _ := answer["accessToken"].(string)
			require.NotEmpty(t, token, "%s", out)
			env["ACCESS_TOKEN"] = token
		case strings.Contains(line, "/v1/auth/me"):
			require.Contains(t, string(out), "cy@example.com")
		case strings.Contains(line, "jwks.json"):
			require.Contains(t, answer, "keys")
		}
	}
}
