// Package readmetour reads the command tours of the repository's README
// (a fenced block after a marker like "<!-- cli-tour -->"), so that tests
// run the commands exactly as a newcomer would paste them.
package readmetour

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
)

// Root returns the repository's root: the nearest directory, from the
// working directory up, that holds go.work.
func Root() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.work")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("readmetour: no go.work above the working directory")
		}
		dir = parent
	}
}

// Block returns the fenced block right after the README's marker
// "<!-- name -->": its info string ("sh", or "" for a bare fence) and its
// text, for blocks that are not commands (lines to paste into a file).
func Block(name string) (info, text string, err error) {
	root, err := Root()
	if err != nil {
		return "", "", err
	}
	readme, err := os.ReadFile(filepath.Join(root, "README.md"))
	if err != nil {
		return "", "", err
	}
	_, after, ok := strings.Cut(string(readme), "<!-- "+name+" -->\n```")
	if !ok {
		return "", "", fmt.Errorf("readmetour: README.md has no tour %q (a fenced block right after <!-- %s -->)", name, name)
	}
	info, after, _ = strings.Cut(after, "\n")
	text, _, ok = strings.Cut(after, "```")
	if !ok {
		return "", "", fmt.Errorf("readmetour: the tour %q has no closing fence", name)
	}
	return info, text, nil
}

// Lines returns the lines of the README's tour name that keep accepts (all
// when keep is nil), in order. A missing tour, one that is not a ```sh
// block, or one with no line kept, is an error: a test must not pass by
// running nothing.
func Lines(name string, keep func(line string) bool) ([]string, error) {
	info, block, err := Block(name)
	if err != nil {
		return nil, err
	}
	if info != "sh" {
		return nil, fmt.Errorf("readmetour: the tour %q is a ```%s block, not ```sh", name, info)
	}
	var lines []string
	for _, l := range strings.Split(block, "\n") {
		if l != "" && (keep == nil || keep(l)) {
			lines = append(lines, l)
		}
	}
	if len(lines) == 0 {
		return nil, fmt.Errorf("readmetour: the tour %q has no line to run", name)
	}
	return lines, nil
}

// lineDone is printed by Run after each line, to split the output by line;
// no command of a tour prints it.
const lineDone = "\x1e readmetour: line done \x1e\n"

// Run runs lines in one bash process, in order, the way a newcomer who
// pastes them into one terminal would: a variable that one line sets (like
// ACCESS_TOKEN=$(...)) is seen by the lines after it, and nothing else is,
// beyond env (the whole environment, as "KEY=value"). It stops at the first
// line that fails (set -e -o pipefail) and returns the output of each line
// that ran (stdout and stderr), in order; the error names the line that
// failed.
func Run(dir string, env, lines []string) ([]string, error) {
	var script strings.Builder
	script.WriteString("set -e -o pipefail\n")
	for _, l := range lines {
		script.WriteString(l + "\n")
		script.WriteString(`printf '\036 readmetour: line done \036\n'` + "\n")
	}
	cmd := exec.Command("bash", "-c", script.String())
	cmd.Dir = dir
	cmd.Env = env
	out, runErr := cmd.CombinedOutput()
	outputs := strings.Split(string(out), lineDone)
	done := outputs[:len(outputs)-1]
	if runErr == nil && len(done) == len(lines) {
		return done, nil
	}
	failed := min(len(done), len(lines)-1)
	return done, fmt.Errorf("readmetour: %s: %v\n%s", lines[failed], runErr, outputs[len(outputs)-1])
}
