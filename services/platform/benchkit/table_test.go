package benchkit

import (
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestTableRendersEveryDeclaredRow(t *testing.T) {
	t.Parallel()
	tbl := NewTable()
	tbl.Declare("tps", "health throughput", "calls/s", "baseline")
	tbl.Declare("p50", "create p50", "ms", "< 50")
	tbl.Declare("ratio", "resolve | health", "ratio", "≥ 0.80")
	tbl.Declare("rss", "registry RSS", "MiB", "< 200")
	tbl.Info("tps", FormatFloat(12345.6))
	tbl.Set("p50", FormatMillis(12500*time.Microsecond), Verdict(true))
	tbl.Skip("the registry exited", "ratio", "rss", "tps")
	tbl.Skip("a later reason", "rss")
	tbl.Note("a method note")

	var out strings.Builder
	require.NoError(t, tbl.Render(&out, Header{Title: "Bench", Lines: []string{"Cores: 2"}}))
	require.Equal(t, `# Bench

- Cores: 2

| measure | value | unit | target | met |
|---|---:|---|---|---|
| health throughput | 12,346 | calls/s | baseline | — |
| create p50 | 12.5 | ms | < 50 | yes |
| resolve \| health | — | ratio | ≥ 0.80 | n/a |
| registry RSS | — | MiB | < 200 | n/a |

Notes:

- a method note
- resolve | health: n/a because the registry exited
- registry RSS: n/a because the registry exited
`, out.String())
}

func TestTableRefusesUndeclaredMeasures(t *testing.T) {
	t.Parallel()
	require.Panics(t, func() { NewTable().Set("nope", "1", "yes") })
}

func TestFormatting(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		got  string
		want string
	}{
		{"zero", FormatFloat(0), "0"},
		{"below one keeps three decimals", FormatFloat(0.8123), "0.812"},
		{"below ten keeps two", FormatFloat(3.14159), "3.14"},
		{"below a hundred keeps one", FormatFloat(42.25), "42.2"},
		{"large numbers are whole and grouped", FormatFloat(1234567.8), "1,234,568"},
		{"negative numbers keep their sign", FormatFloat(-1234.4), "-1,234"},
		{"counts are grouped", FormatCount(100000), "100,000"},
		{"small counts are not", FormatCount(999), "999"},
		{"milliseconds", FormatMillis(1500 * time.Microsecond), "1.50"},
		{"seconds", FormatSeconds(90 * time.Second), "90.0"},
		{"mebibytes", FormatMiB(150 << 20), "150"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			require.Equal(t, tc.want, tc.got)
		})
	}
}
