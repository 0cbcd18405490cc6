package listquery_test

import (
	"encoding/base64"
	"fmt"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"tenantry.dev/tenant-registry/internal/listquery"
)

func TestPageToken(t *testing.T) {
	t.Parallel()
	hash := listquery.FilterHash("state = ACTIVE", false)

	t.Run("a token decodes to what was encoded", func(t *testing.T) {
		t.Parallel()
		want := listquery.PageToken{AfterSlug: "acme", FilterHash: hash}
		s := listquery.EncodePageToken(want)
		require.NotContains(t, s, "acme", "the token is opaque")
		got, err := listquery.DecodePageToken(s)
		require.NoError(t, err)
		require.Equal(t, want, got)
		require.NoError(t, got.CheckFilter(hash))
	})
	t.Run("a token is safe in a URL", func(t *testing.T) {
		t.Parallel()
		s := listquery.EncodePageToken(listquery.PageToken{AfterSlug: strings.Repeat("z", 63), FilterHash: hash})
		require.Regexp(t, `^[A-Za-z0-9_-]+$`, s)
	})
	t.Run("an empty token is the first page", func(t *testing.T) {
		t.Parallel()
		got, err := listquery.DecodePageToken("")
		require.NoError(t, err)
		require.Equal(t, listquery.PageToken{}, got)
		require.NoError(t, got.CheckFilter(hash), "the first page goes with any filter")
	})
	t.Run("a token for another filter is refused", func(t *testing.T) {
		t.Parallel()
		tok := listquery.PageToken{AfterSlug: "acme", FilterHash: hash}
		err := tok.CheckFilter(listquery.FilterHash("state = DELETED", false))
		requireInvalid(t, err, "page_token", listquery.ReasonInvalidPageToken)
		require.ErrorContains(t, err, "page_token does not match the filter of the request that returned it")
	})
	t.Run("a token for another show_deleted is refused", func(t *testing.T) {
		t.Parallel()
		tok := listquery.PageToken{AfterSlug: "acme", FilterHash: hash}
		err := tok.CheckFilter(listquery.FilterHash("state = ACTIVE", true))
		requireInvalid(t, err, "page_token", listquery.ReasonInvalidPageToken)
	})

	encodeJSON := func(json string) string { return base64.RawURLEncoding.EncodeToString([]byte(json)) }
	bad := []struct {
		name  string
		token string
	}{
		{"garbage is refused", "not a token!"},
		{"padded base64 is refused", base64.URLEncoding.EncodeToString([]byte(`{"v":1,"a":"acme","f":"` + hash + `"}`))},
		{"standard base64 is refused", "+/+/"},
		{"a truncated token is refused", listquery.EncodePageToken(listquery.PageToken{AfterSlug: "acme", FilterHash: hash})[:20]},
		{"a huge token is refused", strings.Repeat("A", 4096)},
		{"something other than JSON is refused", encodeJSON("acme")},
		{"a JSON array is refused", encodeJSON(`["acme"]`)},
		{"an unknown field is refused", encodeJSON(`{"v":1,"a":"acme","f":"` + hash + `","admin":true}`)},
		{"data after the token is refused", encodeJSON(`{"v":1,"a":"acme","f":"` + hash + `"}{}`)},
		{"differently-cased fields are refused", encodeJSON(`{"V":1,"A":"acme","F":"` + hash + `"}`)},
		{"duplicate fields are refused", encodeJSON(`{"v":1,"a":"acme","a":"zzz","f":"` + hash + `"}`)},
		{"spaces in the JSON are refused", encodeJSON(`{"v": 1, "a": "acme", "f": "` + hash + `"}`)},
		{"another version is refused", encodeJSON(`{"v":2,"a":"acme","f":"` + hash + `"}`)},
		{"a missing version is refused", encodeJSON(`{"a":"acme","f":"` + hash + `"}`)},
		{"an empty position is refused", encodeJSON(`{"v":1,"a":"","f":"` + hash + `"}`)},
		{"a position that is no slug is refused", encodeJSON(`{"v":1,"a":"acme'; DROP SCHEMA public;--","f":"` + hash + `"}`)},
		{"a position with upper case is refused", encodeJSON(`{"v":1,"a":"ACME","f":"` + hash + `"}`)},
		{"a position longer than a slug is refused", encodeJSON(`{"v":1,"a":"` + strings.Repeat("a", 64) + `","f":"` + hash + `"}`)},
		{"a missing filter hash is refused", encodeJSON(`{"v":1,"a":"acme"}`)},
		{"a filter hash of the wrong length is refused", encodeJSON(`{"v":1,"a":"acme","f":"AAAA"}`)},
		{"a filter hash that is not base64 is refused", encodeJSON(`{"v":1,"a":"acme","f":"` + strings.Repeat("!", 22) + `"}`)},
	}
	for _, tc := range bad {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			got, err := listquery.DecodePageToken(tc.token)
			requireInvalid(t, err, "page_token", listquery.ReasonInvalidPageToken)
			require.Equal(t, listquery.PageToken{}, got)
		})
	}
}

func TestFilterHash(t *testing.T) {
	t.Parallel()
	t.Run("the same parameters give the same hash", func(t *testing.T) {
		t.Parallel()
		require.Equal(t, listquery.FilterHash("state = ACTIVE", true), listquery.FilterHash("state = ACTIVE", true))
	})
	t.Run("the hash is short and URL-safe", func(t *testing.T) {
		t.Parallel()
		require.Regexp(t, `^[A-Za-z0-9_-]{22}$`, listquery.FilterHash(strings.Repeat("x", 2048), false))
	})
	distinct := []struct {
		name string
		a, b string
		da   bool
		db   bool
	}{
		{"show_deleted changes the hash", "", "", false, true},
		{"the filter changes the hash", "state = ACTIVE", "state = DELETED", false, false},
		{"an empty filter differs from a non-empty one", "", "state = ACTIVE", false, false},
		{"filter text cannot imitate the show_deleted flag", "true\x00", "", false, true},
	}
	for _, tc := range distinct {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			require.NotEqual(t, listquery.FilterHash(tc.a, tc.da), listquery.FilterHash(tc.b, tc.db))
		})
	}
}

func TestPageSize(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		in   int32
		want int
	}{
		{"zero means the default of 50", 0, 50},
		{"one is one", 1, 1},
		{"a size within bounds is kept", 200, 200},
		{"the maximum is kept", 1000, 1000},
		{"more than the maximum is capped", 1001, 1000},
		{"the largest int32 is capped", 1<<31 - 1, 1000},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			got, err := listquery.PageSize(tc.in)
			require.NoError(t, err)
			require.Equal(t, tc.want, got)
		})
	}
	for _, n := range []int32{-1, -1 << 31} {
		t.Run(fmt.Sprintf("a size of %d is refused", n), func(t *testing.T) {
			t.Parallel()
			got, err := listquery.PageSize(n)
			requireInvalid(t, err, "page_size", listquery.ReasonInvalidPageSize)
			require.ErrorContains(t, err, "use 0 for the default of 50, or up to 1000")
			require.Zero(t, got)
		})
	}
}

// FuzzDecodePageToken checks that DecodePageToken never panics and accepts
// only tokens that EncodePageToken produces.
func FuzzDecodePageToken(f *testing.F) {
	hash := listquery.FilterHash("", false)
	f.Add("")
	f.Add(listquery.EncodePageToken(listquery.PageToken{AfterSlug: "acme", FilterHash: hash}))
	f.Add(base64.RawURLEncoding.EncodeToString([]byte(`{"v":1,"a":"acme","f":"` + hash + `","x":0}`)))
	f.Add("not a token!")
	f.Fuzz(func(t *testing.T, s string) {
		got, err := listquery.DecodePageToken(s)
		if err != nil {
			requireInvalid(t, err, "page_token", listquery.ReasonInvalidPageToken)
			return
		}
		if s == "" {
			require.Equal(t, listquery.PageToken{}, got)
			return
		}
		require.Equal(t, s, listquery.EncodePageToken(got))
	})
}
