// Package fieldmask reads update masks the way clients send them. Over
// gRPC a mask names fields in snake_case (display_name); over REST, JSON's
// convention is lowerCamelCase (displayName), and grpc-gateway passes a
// mask given in the query string through as written. Handlers compare
// against snake_case names, so both spellings must land there.
package fieldmask

import (
	"strings"
	"unicode"
)

// Paths returns the mask's paths in snake_case, each path segment
// converted separately ("user.displayName" → "user.display_name").
func Paths(paths []string) []string {
	out := make([]string, len(paths))
	for i, p := range paths {
		segs := strings.Split(p, ".")
		for j, s := range segs {
			segs[j] = snake(s)
		}
		out[i] = strings.Join(segs, ".")
	}
	return out
}

func snake(s string) string {
	var b strings.Builder
	for i, r := range s {
		if unicode.IsUpper(r) {
			if i > 0 {
				b.WriteByte('_')
			}
			b.WriteRune(unicode.ToLower(r))
			continue
		}
		b.WriteRune(r)
	}
	return b.String()
}
