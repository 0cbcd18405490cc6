package benchkit

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestParseProcStat(t *testing.T) {
	t.Parallel()
	t.Run("adds user and system time, in USER_HZ ticks, and reads the parent", func(t *testing.T) {
		t.Parallel()
		// A command name with spaces and parentheses must not shift the fields.
		stat := "4242 (service (x) y) S 1 4242 4242 0 -1 4194560 2000 0 0 0 150 25 0 0 20 0 9 0 1234 0 0\n"
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

func TestParseProcStatus(t *testing.T) {
	t.Parallel()
	t.Run("reads VmRSS and VmHWM in bytes", func(t *testing.T) {
		t.Parallel()
		m, err := parseProcStatus([]byte("Name:\ttenant-registry\nVmHWM:\t   81920 kB\nVmRSS:\t   40960 kB\nThreads:\t8\n"))
		require.NoError(t, err)
		require.Equal(t, Memory{RSS: 40 << 20, Peak: 80 << 20}, m)
	})
	t.Run("fails when a line is missing", func(t *testing.T) {
		t.Parallel()
		_, err := parseProcStatus([]byte("VmRSS:\t1 kB\n"))
		require.Error(t, err)
	})
}
