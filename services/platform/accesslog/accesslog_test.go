package accesslog_test

import (
	"log/slog"
	"testing"

	"github.com/stretchr/testify/require"

	"tenantry.dev/platform/accesslog"
	"tenantry.dev/platform/flagenv"
)

func TestPolicy(t *testing.T) {
	for _, tc := range []struct {
		name      string
		args      []string
		env       map[string]string
		wantLevel slog.Level
		wantOf30  int
		wantErr   string
	}{
		{name: "the default samples 1 in 10 at info", wantLevel: slog.LevelInfo, wantOf30: 3},
		{name: "every record", args: []string{"-access-log-sample", "1"}, wantLevel: slog.LevelInfo, wantOf30: 30},
		{name: "from the environment", env: map[string]string{"TENANTRY_ACCESS_LOG_SAMPLE": "7", "TENANTRY_ACCESS_LOG_LEVEL": "debug"},
			wantLevel: slog.LevelDebug, wantOf30: 5},
		{name: "a bad sample", args: []string{"-access-log-sample", "0"}, wantErr: "1 or more"},
		{name: "a bad level", env: map[string]string{"TENANTRY_ACCESS_LOG_LEVEL": "loud"}, wantErr: "not a level"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			fs := flagenv.New("test", func(k string) (string, bool) { v, ok := tc.env[k]; return v, ok })
			var p accesslog.Policy
			accesslog.Flags(fs, &p)
			err := fs.Parse(tc.args)
			if tc.wantErr != "" {
				require.ErrorContains(t, err, tc.wantErr)
				return
			}
			require.NoError(t, err)
			written := 0
			for range 30 {
				level, ok := p.Routine()
				require.Equal(t, tc.wantLevel, level)
				if ok {
					written++
				}
			}
			require.Equal(t, tc.wantOf30, written)
		})
	}
	var none *accesslog.Policy
	level, ok := none.Routine()
	require.True(t, ok)
	require.Equal(t, slog.LevelInfo, level)
}
