package tenantdb

import (
	"fmt"
	"net/url"
	"regexp"
	"strings"
)

// DefaultPlacement names the placement of the database given by
// DATABASE_URL.
const DefaultPlacement = "default"

var placementName = regexp.MustCompile(`^[a-z][a-z0-9_-]{0,62}$`)

// ParsePlacements reads the databases that hold tenant schemas from a
// setting like "eu=postgres://...,us=postgres://...", adding the default
// placement at defaultURL. Both services read the same setting, so they
// agree on where each tenant's schema lives. It returns every problem found,
// each naming the setting.
func ParsePlacements(setting, spec, defaultURL string) (map[string]string, []string) {
	placements := map[string]string{DefaultPlacement: defaultURL}
	var problems []string
	for _, item := range strings.Split(spec, ",") {
		item = strings.TrimSpace(item)
		if item == "" {
			continue
		}
		name, u, ok := strings.Cut(item, "=")
		parsed, err := url.Parse(u)
		switch {
		case !ok || err != nil || (parsed.Scheme != "postgres" && parsed.Scheme != "postgresql"):
			problems = append(problems, fmt.Sprintf("%s: %q is not name=postgres-url", setting, item))
		case !placementName.MatchString(name):
			problems = append(problems, fmt.Sprintf("%s: placement name %q must be 1-63 of a-z, 0-9, '_', '-', starting with a letter", setting, name))
		case name == DefaultPlacement:
			problems = append(problems, fmt.Sprintf("%s: %q is the DATABASE_URL placement; pick another name", setting, name))
		case placements[name] != "":
			problems = append(problems, fmt.Sprintf("%s: placement %q is listed twice", setting, name))
		default:
			placements[name] = u
		}
	}
	return placements, problems
}
