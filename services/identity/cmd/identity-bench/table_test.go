package main

import (
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestTableRendersEveryDeclaredRow(t *testing.T) {
	t.Parallel()
	tbl := newTable()
	tbl.declare("tps", "health throughput", "calls/s", "baseline")
	tbl.declare("p50", "create p50", "ms", "< 50")
	tbl.declare("ratio", "resolve | health", "ratio", "≥ 0.80")
	tbl.declare("rss", "registry RSS", "MiB", "< 200")
	tbl.info("tps", formatFloat(12345.6))
	tbl.set("p50", formatMillis(12500*time.Microsecond), verdict(true))
	tbl.skip("the registry exited", "ratio", "rss", "tps")
	tbl.skip("a later reason", "rss")
	tbl.note("a method note")

	var out strings.Builder
	require.NoError(t, tbl.render(&out, header{title: "Bench", lines: []string{"Cores: 2"}}))
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
	require.Panics(t, func() { newTable().set("nope", "1", "yes") })
}

func TestFormatting(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		got  string
		want string
	}{
		{"zero", formatFloat(0), "0"},
		{"below one keeps three decimals", formatFloat(0.8123), "0.812"},
		{"below ten keeps two", formatFloat(3.14159), "3.14"},
		{"below a hundred keeps one", formatFloat(42.25), "42.2"},
		{"large numbers are whole and grouped", formatFloat(1234567.8), "1,234,568"},
		{"negative numbers keep their sign", formatFloat(-1234.4), "-1,234"},
		{"counts are grouped", formatCount(100000), "100,000"},
		{"small counts are not", formatCount(999), "999"},
		{"milliseconds", formatMillis(1500 * time.Microsecond), "1.50"},
		{"seconds", formatSeconds(90 * time.Second), "90.0"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			require.Equal(t, tc.want, tc.got)
		})
	}
}

func TestParseProcStat(t *testing.T) {
	t.Parallel()
	t.Run("adds user and system time, in USER_HZ ticks", func(t *testing.T) {
		t.Parallel()
		// A command name with spaces and parentheses must not shift the fields.
		stat := "4242 (identity (x) y) S 1 4242 4242 0 -1 4194560 2000 0 0 0 150 25 0 0 20 0 9 0 1234 0 0\n"
		cpu, err := parseProcStat([]byte(stat))
		require.NoError(t, err)
		require.Equal(t, 1750*time.Millisecond, cpu)
		ppid, _, err := parseProcStatFields([]byte(stat))
		require.NoError(t, err)
		require.Equal(t, 1, ppid)
	})
	t.Run("fails on text that is not a stat line", func(t *testing.T) {
		t.Parallel()
		_, err := parseProcStat([]byte("4242 (x) S 1 2"))
		require.Error(t, err)
	})
}

func TestLineWriterHandsOverWholeLines(t *testing.T) {
	t.Parallel()
	var lines []string
	lw := &lineWriter{onLine: func(l string) { lines = append(lines, l) }}
	_, _ = lw.Write([]byte("first li"))
	_, _ = lw.Write([]byte("ne\nsecond\nthi"))
	lw.flush()
	require.Equal(t, []string{"first line", "second", "thi"}, lines)
}
