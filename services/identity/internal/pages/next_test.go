package pages

import (
	"testing"

	"github.com/stretchr/testify/require"
)

func TestIsLocalPath(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		name, next string
		local      bool
	}{
		{"a page", "/account", true},
		{"a page with a query and a fragment", "/admin/users?page=2#invite", true},
		{"the root", "/", true},
		{"a query that holds slashes", "/account?back=//evil.example/x", true},
		{"a fragment that holds slashes", "/account#//evil.example", true},
		{"encoded slashes, which a browser keeps encoded in a path", "/%2F%2Fevil.example/x", true},
		{"an encoded backslash", "/%5Cevil.example/x", true},
		{"an at sign in the path", "/@evil.example/x", true},
		{"a dot inside a segment", "/a.b/..c/%2e%2e%2e", true},

		{"empty", "", false},
		{"a relative path", "account", false},
		{"a scheme-relative URL", "//evil.example/x", false},
		{"three slashes", "///evil.example/x", false},
		{"a slash and a backslash", "/\\evil.example/x", false},
		{"two backslashes", "\\\\evil.example/x", false},
		{"a backslash and a slash", "\\/evil.example/x", false},
		{"a tab between the slashes", "/\t/evil.example/x", false},
		{"a newline between the slashes", "/\n/evil.example/x", false},
		{"a carriage return between the slashes", "/\r/evil.example/x", false},
		{"a tab and a backslash", "/\t\\evil.example/x", false},
		{"a backslash anywhere, even in the query", "/account?back=\\x", false},
		{"a null byte", "/\x00/evil.example/x", false},
		{"a delete character", "/\x7f/evil.example/x", false},
		{"a leading tab", "\t//evil.example/x", false},
		{"a leading space", " //evil.example/x", false},
		{"a dot segment before two slashes", "/.//evil.example/x", false},
		{"an encoded dot segment", "/%2e//evil.example/x", false},
		{"an upper-case encoded dot segment", "/%2E//evil.example/x", false},
		{"a dot-dot segment", "/a/..//evil.example/x", false},
		{"a half-encoded dot-dot segment", "/a/.%2E//evil.example/x", false},
		{"a trailing dot segment", "/account/.", false},
		{"an absolute http URL", "http://evil.example/x", false},
		{"an absolute https URL", "https://evil.example/x", false},
		{"the tenant as userinfo of another host", "http://demo.localhost@evil.example/x", false},
		{"a scheme-relative URL with userinfo", "//demo.localhost@evil.example/x", false},
		{"a scheme without slashes", "http:evil.example/x", false},
		{"a javascript: URL", "javascript:alert(document.domain)", false},
		{"a data: URL", "data:text/html,<script>alert(1)</script>", false},
	} {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			require.Equal(t, c.local, IsLocalPath(c.next), "%q", c.next)
		})
	}
}

func TestCleanQuery(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		name, rawQuery string
		redirect       bool
		want           string
	}{
		{"no query stays", "", false, ""},
		{"a local next stays", "next=%2Fadmin%2Fusers", false, ""},
		{"a token stays", "token=abc", false, ""},
		{"a malformed escape elsewhere does not matter", "x=%zz&next=/account", false, ""},

		{"a password field drops the whole query", "email=a%40b.example&password=hunter2", true, ""},
		{"a new password field drops it too", "token=abc&new_password=hunter2", true, ""},
		{"a current password field drops it too", "current_password=a&new_password=b", true, ""},
		{"an encoded password field name is one too", "pass%77ord=hunter2", true, ""},
		{"a scheme-relative next is dropped", "next=%2F%2Fevil.example", true, ""},
		{"an encoded backslash next is dropped", "next=/%5Cevil.example/x", true, ""},
		{"an encoded tab next is dropped", "next=/%09/evil.example/x", true, ""},
		{"a next with a plus for a space is dropped", "next=+//evil.example", true, ""},
		{"a next with a semicolon, which net/url would skip, is dropped", "next=//evil.example;x", true, ""},
		{"a next with a bad escape, which net/url would skip, is dropped", "next=//evil.example%zz", true, ""},
		{"an encoded next name is read as next", "ne%78t=//evil.example", true, ""},
		{"every next is checked, not only the first", "next=/account&next=//evil.example", true, ""},
		{"the other parameters stay as they were", "a=1&next=//evil.example&b=%2F", true, "a=1&b=%2F"},
	} {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			got, redirect := cleanQuery(c.rawQuery)
			require.Equal(t, c.redirect, redirect, "%q", c.rawQuery)
			require.Equal(t, c.want, got, "%q", c.rawQuery)
		})
	}
}

func TestDecodeFormComponent(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]string{
		"plain":       "plain",
		"a+b":         "a b",
		"%2F%2f":      "//",
		"%5C":         "\\",
		"%09":         "\t",
		"%zz%2":       "%zz%2",
		"100%":        "100%",
		"%e2%82%ac+x": "€ x",
	} {
		require.Equal(t, want, decodeFormComponent(in), "%q", in)
	}
}
