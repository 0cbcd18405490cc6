package pages_test

import (
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/stretchr/testify/require"

	"tenantry.dev/identity/internal/pages"
)

func TestWantsPage(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name, method, accept string
		want                 bool
	}{
		{"a browser's GET", http.MethodGet, "text/html,application/xhtml+xml,*/*;q=0.8", true},
		{"a HEAD asking for HTML", http.MethodHead, "text/html", true},
		{"HTML with parameters", http.MethodGet, "application/json, text/html; q=0.5", true},
		{"curl's default", http.MethodGet, "*/*", false},
		{"no Accept", http.MethodGet, "", false},
		{"JSON", http.MethodGet, "application/json", false},
		{"a POST", http.MethodPost, "text/html", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			r := httptest.NewRequest(tc.method, "/login", nil)
			if tc.accept != "" {
				r.Header.Set("Accept", tc.accept)
			}
			require.Equal(t, tc.want, pages.WantsPage(r))
		})
	}
}

func TestWrongHost(t *testing.T) {
	t.Parallel()
	w := httptest.NewRecorder()
	pages.WrongHost(w, httptest.NewRequest(http.MethodGet, "/login", nil), http.StatusNotFound,
		`<b>x</b>`, []string{"http://{tenant}.localhost:8080/login"})
	require.Equal(t, http.StatusNotFound, w.Code)
	require.Contains(t, w.Body.String(), "<code>http://{tenant}.localhost:8080/login</code>")
	require.Contains(t, w.Body.String(), "&lt;b&gt;x&lt;/b&gt;", "the host is escaped")

	w = httptest.NewRecorder()
	pages.WrongHost(w, httptest.NewRequest(http.MethodHead, "/login", nil), http.StatusNotFound, "localhost", nil)
	require.Empty(t, w.Body.String(), "a HEAD gets no body")
}
