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

// readmeRESTTour returns the lines of the README's REST tour that call
// identity (port 8080); the registry's tests run the others.
func readmeRESTTour(t *testing.T) []string {
	t.Helper()
	lines, err := readmetour.Lines("rest-tour", func(l string) bool {
		return !strings.HasPrefix(l, "#") && strings.Contains(l, "localhost:8080")
	})
	require.NoError(t, err)
	require.NotEmpty(t, lines)
	return lines
}

// runReadmeRESTTour runs the README's identity lines of the REST tour as
// written, in one shell with env (as "KEY=value"), against s's HTTP port in
// place of 8080, and checks each answer.
func runReadmeRESTTour(t *testing.T, s *system, env map[string]string) {
	t.Helper()
	_, port, _ := strings.Cut(s.identity.HTTPAddr().String(), ":")
	lines := readmeRESTTour(t)
	for i := range lines {
		lines[i] = strings.ReplaceAll(lines[i], "localhost:8080", "localhost:"+port)
	}
	shellEnv := append(registrytest.CleanEnv(), "PATH="+os.Getenv("PATH"))
	for k, v := range env {
		shellEnv = append(shellEnv, k+"="+v)
	}
	outputs, err := readmetour.Run(t.TempDir(), shellEnv, lines)
	require.NoError(t, err)
	require.Len(t, outputs, len(lines))
	sawMe := false
	for i, out := range outputs {
		line := lines[i]
		if strings.HasPrefix(line, "ACCESS_TOKEN=") {
			require.Empty(t, out, "%s", line)
			continue
		}
		var answer map[string]any
		require.NoError(t, json.Unmarshal([]byte(out), &answer), "%s\n%s", line, out)
		require.NotContains(t, answer, "code", "an error: %s\n%s", line, out)
		switch {
		case strings.Contains(line, "/v1/auth:login"):
			require.NotEmpty(t, answer["accessToken"], "%s", out)
		case strings.Contains(line, "/v1/auth/me"):
			require.Contains(t, out, "cy@example.com", "the tour's own ACCESS_TOKEN is cy's")
			sawMe = true
		case strings.Contains(line, "jwks.json"):
			require.Contains(t, answer, "keys")
		}
	}
	require.True(t, sawMe, "the tour asks who is logged in")
}

// The README's identity REST lines run as written, on their own: in a shell
// that has only what make run told the newcomer to export, the tour logs in
// for its own ACCESS_TOKEN.
func TestReadmeRESTTour(t *testing.T) {
	t.Parallel()
	if _, err := exec.LookPath("curl"); err != nil {
		t.Skip("curl is not installed")
	}
	s := startSystem(t, "demo")
	runReadmeRESTTour(t, s, map[string]string{"TENANTRY_OPERATOR_TOKEN": registrytest.OperatorToken})
}
