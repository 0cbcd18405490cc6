package pages

import (
	"strings"
)

// IsLocalPath reports whether next, the decoded value of a page's ?next=,
// is a path on the page's own origin however a browser reads it. It is
// deliberately stricter than the browser's URL parser, since it only has to
// accept the paths the pages themselves put there:
//
//   - it must start with one "/" and not "//" (scheme-relative: another
//     host); anything else may carry a scheme (https:, javascript:) or be
//     read relative to the page;
//   - it may hold no ASCII control character, since browsers drop tabs, line
//     feeds and carriage returns anywhere in a URL ("/\t/evil" is
//     "//evil"), and no backslash, which they read as "/" in http(s) URLs
//     ("/\evil" is "//evil");
//   - its path may hold no dot segment, plain or percent-encoded, since
//     removing them can leave a path starting with "//" ("/.//evil",
//     "/%2e//evil", "/a/..//evil"), which the browser would then read as a
//     host when the path is used as a link.
//
// Percent-encoded slashes and backslashes ("/%2F%2Fevil", "/%5Cevil") stay
// in the path: a browser does not decode them there, so they name a path of
// this origin.
func IsLocalPath(next string) bool {
	if !strings.HasPrefix(next, "/") || strings.HasPrefix(next, "//") {
		return false
	}
	for i := 0; i < len(next); i++ {
		if c := next[i]; c < 0x20 || c == 0x7f || c == '\\' {
			return false
		}
	}
	path := next
	if i := strings.IndexAny(path, "?#"); i >= 0 {
		path = path[:i]
	}
	for _, segment := range strings.Split(path, "/") {
		// Browsers treat "%2e", in either case, as a dot in a path segment.
		switch strings.ReplaceAll(strings.ToLower(segment), "%2e", ".") {
		case ".", "..":
			return false
		}
	}
	return true
}

// secretFields are the names of the pages' password fields. One in a page's
// query means a browser submitted the form as GET, without the script.
var secretFields = map[string]bool{
	"password":         true,
	"current_password": true,
	"new_password":     true,
	// The login's second step: a code, and the challenge it answers.
	"code":             true,
	"enrol_code":       true,
	"secret":           true,
	"mfa_challenge":    true,
	"login_code_token": true,
}

// cleanQuery returns the query a page must be redirected to, and true, when
// rawQuery must not stay in the address bar: none at all when it holds a
// password field; rawQuery without its next parameters when one of them
// fails IsLocalPath. It reads rawQuery as browsers do (URLSearchParams),
// not as net/url does, which drops pairs holding ";" or a bad escape that a
// browser keeps.
func cleanQuery(rawQuery string) (string, bool) {
	if rawQuery == "" {
		return "", false
	}
	pairs := strings.Split(rawQuery, "&")
	var kept []string
	badNext := false
	for _, pair := range pairs {
		name, value, _ := strings.Cut(pair, "=")
		name = decodeFormComponent(name)
		switch {
		case secretFields[name]:
			return "", true
		case name == "next":
			badNext = badNext || !IsLocalPath(decodeFormComponent(value))
		default:
			kept = append(kept, pair)
		}
	}
	if !badNext {
		return "", false
	}
	return strings.Join(kept, "&"), true
}

// queryValue returns the first value of name in rawQuery, read as browsers
// read it (URLSearchParams.get), like cleanQuery; "" when there is none.
func queryValue(rawQuery, name string) string {
	if rawQuery == "" {
		return ""
	}
	for _, pair := range strings.Split(rawQuery, "&") {
		k, value, _ := strings.Cut(pair, "=")
		if decodeFormComponent(k) == name {
			return decodeFormComponent(value)
		}
	}
	return ""
}

// decodeFormComponent decodes a name or value of a query the way browsers
// do (application/x-www-form-urlencoded): "+" is a space, and a "%" that
// does not start two hex digits stays as it is.
func decodeFormComponent(s string) string {
	if !strings.ContainsAny(s, "+%") {
		return s
	}
	var b strings.Builder
	b.Grow(len(s))
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c == '+':
			b.WriteByte(' ')
		case c == '%' && i+2 < len(s) && isHex(s[i+1]) && isHex(s[i+2]):
			b.WriteByte(unhex(s[i+1])<<4 | unhex(s[i+2]))
			i += 2
		default:
			b.WriteByte(c)
		}
	}
	return b.String()
}

func isHex(c byte) bool {
	return '0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F'
}

func unhex(c byte) byte {
	switch {
	case c <= '9':
		return c - '0'
	case c >= 'a':
		return c - 'a' + 10
	default:
		return c - 'A' + 10
	}
}
