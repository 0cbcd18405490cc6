package webhook

import (
	"errors"
	"net"
	"net/http"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// TestARefusedDialIsKnownAsSuch: the worker tells a delivery the dialer
// refused (whose error names the address the host resolved to) from other
// failures, by errForbiddenAddress through the HTTP client's wrapping, so
// that the error it records for admins does not name that address.
func TestARefusedDialIsKnownAsSuch(t *testing.T) {
	t.Parallel()
	dialer := &net.Dialer{Timeout: time.Second, Control: Guard{}.Control}
	client := &http.Client{Transport: &http.Transport{DialContext: dialer.DialContext}}
	req, err := http.NewRequestWithContext(t.Context(), http.MethodPost, "http://[64:ff9b::a00:5]:9/hook", nil)
	require.NoError(t, err)
	_, err = client.Do(req)
	require.Error(t, err)
	require.True(t, errors.Is(err, errForbiddenAddress), "%v", err)
}
