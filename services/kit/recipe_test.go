package kit_test

import (
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"

	"tenantry.dev/platform/readmetour"
)

// billingMain is a product's smallest use of the kit: it links the
// packages the README's table names. It is built and vetted, never run.
const billingMain = `// Command billing is a product service built on Tenantry's kit.
package main

import (
	"log"

	"tenantry.dev/kit/accesstoken"
	"tenantry.dev/kit/service"
	"tenantry.dev/kit/tenancy"
	"tenantry.dev/kit/tenantpool"
)

func main() {
	_ = accesstoken.NewVerifier(nil, service.DefaultIssuer)
	_ = tenancy.NewResolver(nil, "", tenancy.Options{})
	kit, err := service.New(service.Config{Pool: tenantpool.Options{MaxTenants: tenantpool.DefaultMaxTenants}})
	if err != nil {
		log.Fatal(err)
	}
	defer kit.Close()
}
`

// billingTest checks that registrytest.Build, which runs "go build" in the
// product's module, finds the registry there.
const billingTest = `package main

import (
	"os"
	"testing"

	"tenantry.dev/kit/registrytest"
)

func TestTheRegistryBuildsFromThisModule(t *testing.T) {
	bin, err := registrytest.Build(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(bin); err != nil {
		t.Fatal(err)
	}
}
`

// The README's recipe for using the kit from a module outside this
// workspace, followed as written: its go.mod lines are appended to a new
// module's go.mod and its commands run there, with the clone where the
// README puts it (../tenantry, here a symlink to this repository).
// Dependencies come from the ordinary module cache and proxy; the
// tenantry.dev modules only from the clone.
func TestTheREADMERecipeBuildsAModuleOutsideTheWorkspace(t *testing.T) {
	t.Parallel()
	_, goModLines, err := readmetour.Block("kit-replace")
	require.NoError(t, err)
	commands, err := readmetour.Lines("kit-replace-tour", nil)
	require.NoError(t, err)
	root, err := readmetour.Root()
	require.NoError(t, err)

	dir := t.TempDir()
	require.NoError(t, os.Symlink(root, filepath.Join(dir, "tenantry")))
	billing := filepath.Join(dir, "billing")
	require.NoError(t, os.Mkdir(billing, 0o755))
	require.NoError(t, os.WriteFile(filepath.Join(billing, "main.go"), []byte(billingMain), 0o644))
	require.NoError(t, os.WriteFile(filepath.Join(billing, "main_test.go"), []byte(billingTest), 0o644))

	// Outside the workspace, with the go command's default -mod=readonly:
	// only the README's commands may change go.mod and go.sum.
	run := func(line string) {
		t.Helper()
		cmd := exec.CommandContext(t.Context(), "bash", "-c", line)
		cmd.Dir = billing
		cmd.Env = append(os.Environ(), "GOWORK=off", "GOFLAGS=-mod=readonly")
		out, err := cmd.CombinedOutput()
		require.NoError(t, err, "%s\n%s", line, out)
	}
	run("go mod init example.com/billing")
	goMod, err := os.OpenFile(filepath.Join(billing, "go.mod"), os.O_APPEND|os.O_WRONLY, 0)
	require.NoError(t, err)
	_, err = goMod.WriteString("\n" + goModLines)
	require.NoError(t, err)
	require.NoError(t, goMod.Close())
	for _, line := range commands {
		run(line)
	}
	run("go vet ./...")
	run("go test -count=1 ./...")
}
