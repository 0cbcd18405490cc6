// Package flagenv gives command-line flags an environment-variable
// fallback: a flag set on the command line wins, then the variable, then the
// default. Usage text names the variable so operators find both.
package flagenv

import (
	"flag"
	"fmt"
	"os"
	"strings"
)

// Lookup returns an environment variable; tests replace it.
type Lookup func(key string) (string, bool)

// Set wraps a flag.FlagSet and remembers which flag reads which variable.
type Set struct {
	*flag.FlagSet
	lookup Lookup
	envs   map[string]string // flag name → variable
}

// New returns a Set named for the program. lookup nil means os.LookupEnv.
func New(name string, lookup Lookup) *Set {
	if lookup == nil {
		lookup = os.LookupEnv
	}
	return &Set{FlagSet: flag.NewFlagSet(name, flag.ContinueOnError), lookup: lookup, envs: map[string]string{}}
}

func (s *Set) register(name, env, usage string) string {
	s.envs[name] = env
	if env == "" {
		return usage
	}
	return fmt.Sprintf("%s (env %s)", usage, env)
}

// String defines a string flag with an environment fallback.
func (s *Set) String(p *string, name, env, def, usage string) {
	s.StringVar(p, name, def, s.register(name, env, usage))
}

// Bool defines a boolean flag with an environment fallback.
func (s *Set) Bool(p *bool, name, env string, def bool, usage string) {
	s.BoolVar(p, name, def, s.register(name, env, usage))
}

// Func defines a flag parsed by fn, with an environment fallback.
func (s *Set) Func(name, env, usage string, fn func(string) error) {
	s.FlagSet.Func(name, s.register(name, env, usage), fn)
}

// EnvVars returns the environment variable each flag reads, by flag name,
// for messages that name a setting the way its program reads it (say,
// rpcserver.Config.EnvVars).
func (s *Set) EnvVars() map[string]string {
	vars := make(map[string]string, len(s.envs))
	for name, env := range s.envs {
		if env != "" {
			vars[name] = env
		}
	}
	return vars
}

// Parse parses args, then applies environment values to every flag not set
// on the command line. Each bad value is reported with its source.
func (s *Set) Parse(args []string) error {
	if err := s.FlagSet.Parse(args); err != nil {
		return err
	}
	set := map[string]bool{}
	s.Visit(func(f *flag.Flag) { set[f.Name] = true })
	var problems []string
	s.VisitAll(func(f *flag.Flag) {
		env := s.envs[f.Name]
		if env == "" || set[f.Name] {
			return
		}
		v, ok := s.lookup(env)
		if !ok {
			return
		}
		if err := s.Set(f.Name, v); err != nil {
			problems = append(problems, fmt.Sprintf("%s: %v", env, err))
		}
	})
	if len(problems) > 0 {
		return fmt.Errorf("invalid environment: %s", strings.Join(problems, "; "))
	}
	return nil
}
