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

// readmeTour returns the grpcurl lines of the README's identity tour.
func readmeTour(t *testing.T) []string {
	t.Helper()
	lines, err := readmetour.Lines("identity-tour", func(l string) bool { return strings.HasPrefix(l, "grpcurl ") })
	require.NoError(t, err)
	require.NotEmpty(t, lines)
	return lines
}

// The README's identity flows run as written (with the address of this
// test's identity in place of localhost:50052).
func TestReadmeIdentityTour(t *testing.T) {
	t.Parallel()
	s := startSystem(t, "demo")
	binDir := t.TempDir()
	build := exec.Command("go", "build", "-o", binDir, "github.com/fullstorydev/grpcurl/cmd/grpcurl")
	out, err := build.CombinedOutput()
	require.NoError(t, err, "build grpcurl: %s", out)

	env := map[string]string{"TENANTRY_OPERATOR_TOKEN": registrytest.OperatorToken}
	addr := s.identity.Addr().String()
	for _, line := range readmeTour(t) {
		cmd := exec.Command("bash", "-c", strings.ReplaceAll(line, "localhost:50052", addr))
		cmd.Env = append(registrytest.CleanEnv(), "PATH="+binDir+":"+os.Getenv("PATH"))
		for k, v := range env {
			cmd.Env = append(cmd.Env, k+"="+v)
		}
		out, err := cmd.CombinedOutput()
		require.NoError(t, err, "%s\n%s", line, out)
		method := line[strings.LastIndex(line, "/")+1:]
		t.Logf("%s: ok", method)
		switch method {
		case "SignUp":
			_, _, env["VERIFY_TOKEN"] = s.mailTo("bea@example.com", "Confirm your email")
		case "Login":
			var resp struct{ AccessToken, RefreshToken string }
			require.NoError(t, json.Unmarshal(out, &resp), "%s", out)
			require.NotEmpty(t, resp.AccessToken)
			env["REFRESH_TOKEN"] = resp.RefreshToken
		case "RefreshSession":
			var resp struct{ AccessToken string }
			require.NoError(t, json.Unmarshal(out, &resp), "%s", out)
			env["ACCESS_TOKEN"] = resp.AccessToken
		case "ListSessions":
			require.Contains(t, string(out), `"current": true`)
		case "RequestPasswordReset":
			_, _, env["RESET_TOKEN"] = s.mailTo("bea@example.com", "Reset your password")
		case "InviteUser":
			require.Contains(t, string(out), "STATE_INVITED")
			_, _, env["INVITE_TOKEN"] = s.mailTo("boss@example.com", "invited")
		case "AcceptInvitation":
			require.Contains(t, string(out), "STATE_ACTIVE")
		case "GetJwks":
			require.Contains(t, string(out), `"alg": "EdDSA"`)
		}
	}
	// The flows had their effect: the new password and the new admin work.
	_, err = s.auth.Login(in("demo"), loginRequest("bea@example.com", "a brand new passphrase"))
	require.NoError(t, err)
	_, err = s.auth.Login(in("demo"), loginRequest("boss@example.com", "corner office at last"))
	require.NoError(t, err)

	// The REST tour runs after this one in the same terminal, as a
	// newcomer reads on: the ACCESS_TOKEN left here is of a session this
	// tour logged out, and the REST tour does not need it.
	if _, err := exec.LookPath("curl"); err == nil {
		runReadmeRESTTour(t, s, env)
	}
}
