package readmetour_test

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"tenantry.dev/platform/readmetour"
)

func TestLines(t *testing.T) {
	t.Parallel()
	lines, err := readmetour.Lines("cli-tour", func(l string) bool { return strings.HasPrefix(l, "bin/tenantry ") })
	require.NoError(t, err)
	require.NotEmpty(t, lines)
	_, err = readmetour.Lines("no-such-tour", nil)
	require.ErrorContains(t, err, "no tour")
	_, err = readmetour.Lines("cli-tour", func(string) bool { return false })
	require.ErrorContains(t, err, "no line")
	_, err = readmetour.Lines("kit-replace", nil)
	require.ErrorContains(t, err, "not ```sh", "a block of file lines is not a tour of commands")
}

func TestBlock(t *testing.T) {
	t.Parallel()
	info, text, err := readmetour.Block("kit-replace")
	require.NoError(t, err)
	require.Empty(t, info)
	require.Contains(t, text, "replace (")
	require.NotContains(t, text, "```")
	info, text, err = readmetour.Block("cli-tour")
	require.NoError(t, err)
	require.Equal(t, "sh", info)
	require.True(t, strings.HasPrefix(text, "bin/tenantry "), "the text starts after the fence's line: %q", text)
	_, _, err = readmetour.Block("no-such-tour")
	require.ErrorContains(t, err, "no tour")
}

func TestRun(t *testing.T) {
	t.Parallel()
	env := []string{"PATH=" + os.Getenv("PATH"), "GIVEN=given"}
	outputs, err := readmetour.Run(t.TempDir(), env, []string{
		`echo "$GIVEN"`,
		`TOKEN=$(echo set by a line)`,
		`echo "$TOKEN"; echo to stderr >&2`,
	})
	require.NoError(t, err)
	require.Equal(t, []string{"given\n", "", "set by a line\nto stderr\n"}, outputs,
		"one output a line; a variable a line sets is seen by the lines after it")

	outputs, err = readmetour.Run(t.TempDir(), env, []string{`echo one`, `false | cat`, `echo never`})
	require.ErrorContains(t, err, "false | cat", "the error names the line that failed, even inside a pipe")
	require.Equal(t, []string{"one\n"}, outputs)
}

// Every tour runs on its own, in any order, against one `make run`: no two
// tours create the same tenant or sign up the same account (a second
// CreateTenant answers ALREADY_EXISTS).
func TestToursDoNotCollide(t *testing.T) {
	t.Parallel()
	root, err := readmetour.Root()
	require.NoError(t, err)
	readme, err := os.ReadFile(filepath.Join(root, "README.md"))
	require.NoError(t, err)
	tours := regexp.MustCompile(`<!-- ([a-z-]+-tour) -->`).FindAllStringSubmatch(string(readme), -1)
	require.GreaterOrEqual(t, len(tours), 5)
	tenant := regexp.MustCompile(`"tenant_id":"([a-z0-9-]+)"|tenantId=([a-z0-9-]+)|tenants create ([a-z0-9-]+)`)
	email := regexp.MustCompile(`"email":"([^"]+)"`)
	claimedBy := map[string]string{}
	claim := func(tour, what string) {
		if other, ok := claimedBy[what]; ok && other != tour {
			t.Errorf("the tours %s and %s both create %s", other, tour, what)
		}
		claimedBy[what] = tour
	}
	for _, m := range tours {
		lines, err := readmetour.Lines(m[1], nil)
		require.NoError(t, err)
		for _, l := range lines {
			for _, sub := range tenant.FindAllStringSubmatch(l, -1) {
				claim(m[1], "the tenant "+strings.Join(sub[1:], ""))
			}
			if strings.Contains(l, "SignUp") || strings.Contains(l, "auth:signup") || strings.Contains(l, "InviteUser") {
				for _, sub := range email.FindAllStringSubmatch(l, -1) {
					claim(m[1], "the account "+sub[1])
				}
			}
		}
	}
	require.Contains(t, claimedBy, "the tenant acme", "the patterns still find the tenants the tours create")
	require.Contains(t, claimedBy, "the account ann@example.com", "the patterns still find the accounts the tours sign up")
}
