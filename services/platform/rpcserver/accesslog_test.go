package rpcserver_test

import (
	"testing"

	"github.com/stretchr/testify/require"

	"tenantry.dev/platform/accesslog"
	"tenantry.dev/platform/rpcserver"
)

// Routine calls' records are sampled as the access-log policy says; a
// refused call (a warning) is written every time.
func TestAccessLogSampling(t *testing.T) {
	h := start(t, func(c *rpcserver.Config) { c.AccessLog = &accesslog.Policy{SampleEvery: 4} })
	for range 8 {
		_, _, err := h.echo(callCtx(t, operatorToken, ""), "hi")
		require.NoError(t, err)
	}
	for range 3 {
		_, _, err := h.echo(callCtx(t, serviceToken, ""), "not allowed")
		require.Error(t, err)
	}
	records := h.logs.records(t, func(r map[string]any) bool { return r["msg"] == "rpc" })
	byLevel := map[string]int{}
	for _, r := range records {
		byLevel[r["level"].(string)]++
	}
	require.Equal(t, map[string]int{"INFO": 2, "WARN": 3}, byLevel, "2 of 8 successes, every refusal")
}
