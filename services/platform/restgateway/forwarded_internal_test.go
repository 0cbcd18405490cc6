package restgateway

import (
	"net/http"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestOriginOf(t *testing.T) {
	t.Parallel()
	trusted, err := ParsePrefixes("10.0.0.0/8, 192.168.1.7")
	require.NoError(t, err)
	cases := []struct {
		name     string
		remote   string
		host     string
		xff, xfh string
		wantIP   string
		wantHost string
	}{
		{name: "a direct client is its peer and its Host", remote: "203.0.113.5:4711", host: "Acme.localhost:8080",
			wantIP: "203.0.113.5", wantHost: "acme.localhost"},
		{name: "an untrusted peer's forwarded headers are ignored", remote: "203.0.113.5:4711", host: "acme.localhost",
			xff: "198.51.100.1", xfh: "other.localhost", wantIP: "203.0.113.5", wantHost: "acme.localhost"},
		{name: "a trusted proxy's forwarded headers are believed", remote: "10.1.2.3:4711", host: "internal:8080",
			xff: "198.51.100.1", xfh: "acme.example.com", wantIP: "198.51.100.1", wantHost: "acme.example.com"},
		{name: "the client is the rightmost untrusted hop", remote: "10.1.2.3:4711", host: "internal",
			xff: "1.1.1.1, 198.51.100.1, 192.168.1.7", wantIP: "198.51.100.1", wantHost: "internal"},
		{name: "the first forwarded host is the client's", remote: "192.168.1.7:1", host: "internal",
			xfh: "acme.example.com:443, internal", wantIP: "192.168.1.7", wantHost: "acme.example.com"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			r := &http.Request{RemoteAddr: tc.remote, Host: tc.host, Header: http.Header{}}
			if tc.xff != "" {
				r.Header.Set("X-Forwarded-For", tc.xff)
			}
			if tc.xfh != "" {
				r.Header.Set("X-Forwarded-Host", tc.xfh)
			}
			o := originOf(r, trusted)
			require.Equal(t, tc.wantIP, o.clientIP)
			require.Equal(t, tc.wantHost, o.host)
		})
	}
}

func TestParsePrefixesRefusesNonsense(t *testing.T) {
	t.Parallel()
	_, err := ParsePrefixes("10.0.0.0/8, not-a-cidr")
	require.ErrorContains(t, err, "not-a-cidr")
}
