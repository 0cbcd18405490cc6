package benchkit

import (
	"strconv"
	"strings"
	"time"
)

// mebibyte is the unit memory is printed in.
const mebibyte = 1 << 20

// FormatFloat prints a measured number with about three significant digits
// and thousands separators, which is all a noisy machine can vouch for.
func FormatFloat(v float64) string {
	switch a := abs(v); {
	case a == 0:
		return "0"
	case a < 1:
		return strconv.FormatFloat(v, 'f', 3, 64)
	case a < 10:
		return strconv.FormatFloat(v, 'f', 2, 64)
	case a < 100:
		return strconv.FormatFloat(v, 'f', 1, 64)
	default:
		return groupThousands(strconv.FormatFloat(v, 'f', 0, 64))
	}
}

// FormatMillis prints a duration in milliseconds.
func FormatMillis(d time.Duration) string {
	return FormatFloat(float64(d) / float64(time.Millisecond))
}

// FormatSeconds prints a duration in seconds.
func FormatSeconds(d time.Duration) string { return FormatFloat(d.Seconds()) }

// FormatCount prints an integer with thousands separators.
func FormatCount(n int) string { return groupThousands(strconv.Itoa(n)) }

// FormatMiB prints bytes in mebibytes.
func FormatMiB(n uint64) string { return FormatFloat(float64(n) / mebibyte) }

// groupThousands puts commas between groups of three digits of an integer
// in decimal text, keeping any sign.
func groupThousands(s string) string {
	sign := ""
	if strings.HasPrefix(s, "-") {
		sign, s = "-", s[1:]
	}
	if len(s) <= 3 {
		return sign + s
	}
	var b strings.Builder
	head := len(s) % 3
	if head > 0 {
		b.WriteString(s[:head])
	}
	for i := head; i < len(s); i += 3 {
		if b.Len() > 0 {
			b.WriteByte(',')
		}
		b.WriteString(s[i : i+3])
	}
	return sign + b.String()
}

func abs(v float64) float64 {
	if v < 0 {
		return -v
	}
	return v
}
