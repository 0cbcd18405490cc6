package logging

import (
	"bytes"
	"encoding/json"
	"log/slog"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestNew(t *testing.T) {
	var buf bytes.Buffer
	logger, err := New(&buf, "identity", slog.LevelInfo, "json")
	require.NoError(t, err)
	logger.Debug("hidden")
	logger.Info("shown", "tenant", "acme")
	var rec map[string]any
	require.NoError(t, json.Unmarshal(buf.Bytes(), &rec), "one JSON record: %s", buf.String())
	require.Equal(t, "identity", rec["service"])
	require.Equal(t, "acme", rec["tenant"])
	require.Equal(t, "shown", rec["msg"])

	_, err = New(&buf, "identity", slog.LevelInfo, "xml")
	require.ErrorContains(t, err, "use text or json")
}
