package main

import (
	"strconv"
	"strings"
)

// parseLogLine reads one record of slog's text handler — key=value pairs
// separated by spaces, values quoted Go-style when they hold spaces,
// quotes or '=' — into a map. A pair that does not parse ends the record:
// what came before is returned, with ok false.
func parseLogLine(line string) (attrs map[string]string, ok bool) {
	attrs = map[string]string{}
	s := strings.TrimSpace(line)
	for s != "" {
		eq := strings.IndexByte(s, '=')
		if eq <= 0 || strings.ContainsAny(s[:eq], " \"") {
			return attrs, false
		}
		key := s[:eq]
		s = s[eq+1:]
		var value string
		if strings.HasPrefix(s, `"`) {
			quoted, err := strconv.QuotedPrefix(s)
			if err != nil {
				return attrs, false
			}
			if value, err = strconv.Unquote(quoted); err != nil {
				return attrs, false
			}
			s = s[len(quoted):]
		} else {
			end := strings.IndexByte(s, ' ')
			if end < 0 {
				end = len(s)
			}
			value, s = s[:end], s[end:]
		}
		attrs[key] = value
		s = strings.TrimLeft(s, " ")
	}
	return attrs, true
}

// logLevelAtLeastWarn reports whether a record's level is WARN or above;
// records of unknown form count as warnings, so nothing odd is hidden.
func logLevelAtLeastWarn(attrs map[string]string, ok bool) bool {
	level, found := attrs["level"]
	if !ok || !found {
		return true
	}
	switch {
	case strings.HasPrefix(level, "DEBUG"), strings.HasPrefix(level, "INFO"):
		return false
	}
	return true
}
