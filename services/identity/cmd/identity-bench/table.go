package main

import (
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"
)

// Values of the met column besides yes and no.
const (
	metNA   = "n/a" // the measure could not be taken; the notes say why
	metInfo = "—"   // the row has no target: a baseline or context for others
	noValue = "—"
)

// row is one measure as printed.
type row struct {
	key     string
	measure string
	value   string
	unit    string
	target  string
	met     string
}

// table collects the measures of a run in a fixed order, declared up front,
// so that the printed table has the same rows whatever happens: a measure
// that was not taken is printed as n/a with the reason in the notes.
type table struct {
	rows    []row
	byKey   map[string]int
	missing map[string]string // key → why it was not measured
	notes   []string
}

func newTable() *table {
	return &table{byKey: map[string]int{}, missing: map[string]string{}}
}

// declare adds a row, not yet measured, under key. An empty target means
// the row is informational.
func (t *table) declare(key, measure, unit, target string) {
	if target == "" {
		target = metInfo
	}
	t.byKey[key] = len(t.rows)
	t.rows = append(t.rows, row{key: key, measure: measure, unit: unit, target: target})
}

// set records the value of a measure and whether it met its target.
func (t *table) set(key, value, met string) {
	i, ok := t.byKey[key]
	if !ok {
		panic("identity-bench: undeclared measure " + key)
	}
	t.rows[i].value, t.rows[i].met = value, met
}

// info records the value of a measure without a target.
func (t *table) info(key, value string) { t.set(key, value, metInfo) }

// isSet reports whether the measure has a value.
func (t *table) isSet(key string) bool { return t.rows[t.byKey[key]].met != "" }

// skip marks the measures among keys that have no value yet as not taken,
// for reason. A reason already given wins: it is the first cause.
func (t *table) skip(reason string, keys ...string) {
	for _, k := range keys {
		if _, ok := t.missing[k]; !t.isSet(k) && !ok {
			t.missing[k] = reason
		}
	}
}

// note adds a line to the notes under the table.
func (t *table) note(format string, args ...any) {
	t.notes = append(t.notes, fmt.Sprintf(format, args...))
}

// header is the context printed above the table.
type header struct {
	title string
	lines []string // "Key: value" lines
}

// render writes the header, the table and the notes as Markdown. Measures
// never taken are printed as n/a, and their reasons join the notes.
func (t *table) render(w io.Writer, h header) error {
	var b strings.Builder
	fmt.Fprintf(&b, "# %s\n\n", h.title)
	for _, l := range h.lines {
		fmt.Fprintf(&b, "- %s\n", l)
	}
	b.WriteString("\n| measure | value | unit | target | met |\n|---|---:|---|---|---|\n")
	var reasons []string
	for _, r := range t.rows {
		if r.met == "" {
			r.value, r.met = noValue, metNA
			why := t.missing[r.key]
			if why == "" {
				why = "it was not measured"
			}
			reasons = append(reasons, fmt.Sprintf("%s: n/a because %s", r.measure, why))
		}
		fmt.Fprintf(&b, "| %s | %s | %s | %s | %s |\n",
			cell(r.measure), cell(r.value), cell(r.unit), cell(r.target), cell(r.met))
	}
	if notes := append(append([]string(nil), t.notes...), reasons...); len(notes) > 0 {
		b.WriteString("\nNotes:\n\n")
		for _, n := range notes {
			fmt.Fprintf(&b, "- %s\n", n)
		}
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// cell makes text safe inside a Markdown table cell.
func cell(s string) string {
	s = strings.ReplaceAll(s, "|", `\|`)
	return strings.ReplaceAll(s, "\n", " ")
}

// verdict turns a target check into the met column.
func verdict(ok bool) string {
	if ok {
		return "yes"
	}
	return "no"
}

// formatFloat prints a measured number with about three significant digits
// and thousands separators, which is all a noisy machine can vouch for.
func formatFloat(v float64) string {
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

// formatMillis prints a duration in milliseconds.
func formatMillis(d time.Duration) string {
	return formatFloat(float64(d) / float64(time.Millisecond))
}

// formatSeconds prints a duration in seconds.
func formatSeconds(d time.Duration) string { return formatFloat(d.Seconds()) }

// formatCount prints an integer with thousands separators.
func formatCount(n int) string { return groupThousands(strconv.Itoa(n)) }

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
