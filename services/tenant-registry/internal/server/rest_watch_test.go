package server_test

import (
	"bufio"
	"context"
	"encoding/json"
	"net/http"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// watchLine is one line of GET /v1/tenants:watch: grpc-gateway streams each
// message as a JSON object on its own line, under "result" (or "error").
type watchLine struct {
	Result *struct {
		Type   string `json:"type"`
		Tenant *struct {
			Name string `json:"name"`
		} `json:"tenant"`
		Revision string `json:"revision"` // int64 is a JSON string
	} `json:"result"`
	Error *restError `json:"error"`
}

// openWatch starts a watch over REST and returns its lines as they come.
func (r *registry) openWatch(t *testing.T, token, query string) (*http.Response, <-chan watchLine) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+r.app.HTTPAddr().String()+"/v1/tenants:watch"+query, nil)
	require.NoError(t, err)
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	t.Cleanup(func() { resp.Body.Close() })
	lines := make(chan watchLine, 100)
	go func() {
		defer close(lines)
		sc := bufio.NewScanner(resp.Body)
		sc.Buffer(make([]byte, 0, 64<<10), 1<<20)
		for sc.Scan() {
			var l watchLine
			if json.Unmarshal(sc.Bytes(), &l) == nil {
				lines <- l
			}
		}
	}()
	return resp, lines
}

func nextLine(t *testing.T, lines <-chan watchLine) watchLine {
	t.Helper()
	select {
	case l, ok := <-lines:
		require.True(t, ok, "the watch stream ended")
		return l
	case <-time.After(20 * time.Second):
		t.Fatal("no watch event within 20s")
		return watchLine{}
	}
}

func TestRESTWatchStreamsSnapshotThenLiveChanges(t *testing.T) {
	t.Parallel()
	r := startRegistry(t, "")
	code, body := r.call(http.MethodPost, "/v1/tenants?tenantId=acme", operatorToken, `{"displayName":"Acme"}`)
	require.Equal(t, http.StatusOK, code, "%s", body)

	resp, lines := r.openWatch(t, serviceToken, "")
	require.Equal(t, http.StatusOK, resp.StatusCode)

	first := nextLine(t, lines)
	require.NotNil(t, first.Result, "%+v", first)
	require.Equal(t, "EVENT_TYPE_UPSERT", first.Result.Type)
	require.Equal(t, "tenants/acme", first.Result.Tenant.Name)
	synced := nextLine(t, lines)
	require.NotNil(t, synced.Result)
	require.Equal(t, "EVENT_TYPE_SYNCED", synced.Result.Type)

	// A change made after the snapshot arrives on the open stream.
	code, body = r.call(http.MethodPost, "/v1/tenants?tenantId=globex", operatorToken, `{"displayName":"Globex"}`)
	require.Equal(t, http.StatusOK, code, "%s", body)
	for {
		l := nextLine(t, lines)
		require.NotNil(t, l.Result, "%+v", l)
		if l.Result.Tenant != nil && l.Result.Tenant.Name == "tenants/globex" {
			require.Equal(t, "EVENT_TYPE_UPSERT", l.Result.Type)
			break
		}
	}

	// Resuming from the snapshot's revision replays only what came after.
	_, resumed := r.openWatch(t, serviceToken, "?startRevision="+synced.Result.Revision)
	for {
		l := nextLine(t, resumed)
		require.NotNil(t, l.Result, "%+v", l)
		require.NotEqual(t, "tenants/acme", nameOf(l), "a resumed watch replayed the snapshot")
		if nameOf(l) == "tenants/globex" {
			break
		}
	}
}

func nameOf(l watchLine) string {
	if l.Result == nil || l.Result.Tenant == nil {
		return ""
	}
	return l.Result.Tenant.Name
}

func TestRESTWatchRefusesCallersWithoutTheRightCredential(t *testing.T) {
	t.Parallel()
	r := startRegistry(t, "")
	for _, tc := range []struct {
		name  string
		token string
		code  int
	}{
		{"no token", "", http.StatusUnauthorized},
		{"an unknown token", "not-a-real-token-at-all-0123456789", http.StatusUnauthorized},
	} {
		t.Run(tc.name, func(t *testing.T) {
			resp, lines := r.openWatch(t, tc.token, "")
			require.Equal(t, tc.code, resp.StatusCode)
			l, ok := <-lines
			require.True(t, ok, "a refused watch has no error body")
			require.Nil(t, l.Result, "a refused watch streamed an event")
			require.NotNil(t, l.Error)
			require.Equal(t, 16, l.Error.Code) // UNAUTHENTICATED
			_, more := <-lines
			require.False(t, more, "a refused watch went on streaming")
		})
	}
}
