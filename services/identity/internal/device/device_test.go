package device_test

import (
	"testing"

	"github.com/stretchr/testify/require"

	"tenantry.dev/identity/internal/device"
)

func TestName(t *testing.T) {
	t.Parallel()
	for ua, want := range map[string]string{
		"Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/118.0.0.0 Safari/537.36":                         "Chrome 118 · Windows",
		"Mozilla/5.0 (X11; Linux x86_64; rv:121.0) Gecko/20100101 Firefox/121.0":                                                                  "Firefox 121 · Linux",
		"Mozilla/5.0 (iPhone; CPU iPhone OS 17_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.1 Mobile/15E148 Safari/604.1": "Safari 17 · iOS · Mobile",
		"Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.6099.43 Mobile Safari/537.36":               "Chrome 120 · Android · Mobile",
		"grpc-go/1.85.0": "",
		"curl/8.5.0":     "",
		"":               "",
		"Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)": "",
	} {
		require.Equal(t, want, device.Name(ua), ua)
	}
}
