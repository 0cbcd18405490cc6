package benchkit

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestLineWriterHandsOverWholeLines(t *testing.T) {
	t.Parallel()
	var lines []string
	lw := &lineWriter{onLine: func(l string) { lines = append(lines, l) }}
	_, _ = lw.Write([]byte("first li"))
	_, _ = lw.Write([]byte("ne\nsecond\nthi"))
	lw.flush()
	require.Equal(t, []string{"first line", "second", "thi"}, lines)
}

func TestPrefixLinesPrefixesEveryLine(t *testing.T) {
	t.Parallel()
	var out strings.Builder
	lw := &lineWriter{onLine: PrefixLines("registry: ", &out)}
	_, _ = lw.Write([]byte("first li"))
	_, _ = lw.Write([]byte("ne\nsecond\nthi"))
	lw.flush()
	require.Equal(t, "registry: first line\nregistry: second\nregistry: thi\n", out.String())
}
