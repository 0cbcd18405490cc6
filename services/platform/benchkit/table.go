package benchkit

import (
	"fmt"
	"io"
	"strings"
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

// Table collects the measures of a run in a fixed order, declared up front,
// so that the printed table has the same rows whatever happens: a measure
// that was not taken is printed as n/a with the reason in the notes. It is
// not safe for concurrent use.
type Table struct {
	rows    []row
	byKey   map[string]int
	missing map[string]string // key → why it was not measured
	notes   []string
}

// NewTable returns a table without rows.
func NewTable() *Table {
	return &Table{byKey: map[string]int{}, missing: map[string]string{}}
}

// Declare adds a row, not yet measured, under key. An empty target means
// the row is informational.
func (t *Table) Declare(key, measure, unit, target string) {
	if target == "" {
		target = metInfo
	}
	t.byKey[key] = len(t.rows)
	t.rows = append(t.rows, row{key: key, measure: measure, unit: unit, target: target})
}

// Set records the value of a measure and whether it met its target (see
// [Verdict]). An undeclared key is a programming error and panics.
func (t *Table) Set(key, value, met string) {
	i, ok := t.byKey[key]
	if !ok {
		panic("benchkit: undeclared measure " + key)
	}
	t.rows[i].value, t.rows[i].met = value, met
}

// Info records the value of a measure without a target.
func (t *Table) Info(key, value string) { t.Set(key, value, metInfo) }

// isSet reports whether the measure has a value.
func (t *Table) isSet(key string) bool { return t.rows[t.byKey[key]].met != "" }

// Skip marks the measures among keys that have no value yet as not taken,
// for reason. A reason already given wins: it is the first cause.
func (t *Table) Skip(reason string, keys ...string) {
	for _, k := range keys {
		if _, ok := t.missing[k]; !t.isSet(k) && !ok {
			t.missing[k] = reason
		}
	}
}

// Note adds a line to the notes under the table.
func (t *Table) Note(format string, args ...any) {
	t.notes = append(t.notes, fmt.Sprintf(format, args...))
}

// Header is the context printed above the table.
type Header struct {
	Title string
	Lines []string // "Key: value" lines
}

// Render writes the header, the table and the notes as Markdown. Measures
// never taken are printed as n/a, and their reasons join the notes.
func (t *Table) Render(w io.Writer, h Header) error {
	var b strings.Builder
	fmt.Fprintf(&b, "# %s\n\n", h.Title)
	for _, l := range h.Lines {
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

// Verdict turns a target check into the met column.
func Verdict(ok bool) string {
	if ok {
		return "yes"
	}
	return "no"
}
