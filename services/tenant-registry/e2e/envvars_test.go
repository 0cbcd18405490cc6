package e2e

import (
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

var (
	// mentionedVar is a TENANTRY_ variable named in a message or a doc.
	mentionedVar = regexp.MustCompile(`\bTENANTRY_[A-Z0-9_]*[A-Z0-9]\b`)
	// concatenatedName is a variable's name put together at run time.
	concatenatedName = regexp.MustCompile(`"TENANTRY_"\s*\+`)
	// readVar are the ways a program reads one: a flag's environment
	// fallback (a flag's name, then the variable, in flagenv and in
	// notes-node's settings), an environment lookup, or run-dev.sh's own
	// settings (its ${...} and assignments).
	readVar = []*regexp.Regexp{
		regexp.MustCompile(`["'][a-z0-9-]+["'],\s*["'](TENANTRY_[A-Z0-9_]+)["']`),
		regexp.MustCompile(`(?:Getenv|LookupEnv|lookup|Setenv|\benv)\(\s*"(TENANTRY_[A-Z0-9_]+)"`),
		regexp.MustCompile(`process\.env\.(TENANTRY_[A-Z0-9_]+)`),
		regexp.MustCompile(`\$\{(TENANTRY_[A-Z0-9_]+)`),
		regexp.MustCompile(`(?m)^\s*(?:export\s+|local\s+)?(TENANTRY_[A-Z0-9_]+)=`),
	}
)

// Every TENANTRY_ variable that an error message, a usage text, a comment,
// the README or run-dev.sh names is one that some program reads: a
// newcomer told to set TENANTRY_GRPC_ADDR, which nothing reads, sets it in
// vain.
func TestNamedEnvironmentVariablesExist(t *testing.T) {
	t.Parallel()
	root := repoRoot(t)
	read := map[string]bool{}
	mentions := map[string][]string{} // variable → files naming it
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		name := d.Name()
		if d.IsDir() {
			if path != root && (strings.HasPrefix(name, ".") || name == "node_modules" || name == "bin") {
				return filepath.SkipDir
			}
			return nil
		}
		switch {
		case name == "envvars_test.go": // its comments name examples
			return nil
		case strings.HasSuffix(name, ".go"), strings.HasSuffix(name, ".md"), strings.HasSuffix(name, ".sh"),
			strings.HasSuffix(name, ".js"), strings.HasSuffix(name, ".mjs"), strings.HasSuffix(name, ".proto"),
			strings.HasSuffix(name, ".yaml"), name == "Makefile":
		default:
			return nil
		}
		text, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, path)
		if strings.HasSuffix(name, ".go") && concatenatedName.Match(text) {
			// A name made up at run time is out of this test's sight
			// (rpcserver once named TENANTRY_GRPC_ADDR so).
			t.Errorf("%s puts a TENANTRY_ variable's name together at run time: name it as a constant", rel)
		}
		for _, re := range readVar {
			for _, m := range re.FindAllStringSubmatch(string(text), -1) {
				read[m[1]] = true
			}
		}
		for _, v := range mentionedVar.FindAllString(string(text), -1) {
			if !slices.Contains(mentions[v], rel) {
				mentions[v] = append(mentions[v], rel)
			}
		}
		return nil
	})
	require.NoError(t, err)
	require.True(t, read["TENANTRY_IDENTITY_GRPC_ADDR"] && read["TENANTRY_REGISTRY_GRPC_ADDR"] && read["TENANTRY_DEV_DIR"],
		"the patterns still find the variables programs read")
	for v, files := range mentions {
		if !read[v] {
			t.Errorf("%s is named in %s, but no program reads it", v, strings.Join(files, ", "))
		}
	}
}
