package server

import (
	"regexp"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/google/uuid"

	"tenantry.dev/platform/fault"
)

// Limits on free-form fields, so that one tenant cannot bloat every
// replica's memory or every watcher's stream.
const (
	maxLabels     = 64
	maxLabelValue = 255
)

var (
	labelKeyPattern  = regexp.MustCompile(`^[a-z][a-z0-9_.-]{0,62}$`)
	placementPattern = regexp.MustCompile(`^[a-z][a-z0-9_-]{0,62}$`)
)

func validateLabels(field string, labels map[string]string) error {
	if len(labels) > maxLabels {
		return fault.Invalid(field, "LABELS_TOO_MANY", "%s has %d labels; at most %d are allowed", field, len(labels), maxLabels)
	}
	for k, v := range labels {
		if !labelKeyPattern.MatchString(k) {
			return fault.Invalid(field, "LABEL_KEY_INVALID",
				"label key %q is invalid: use 1-63 characters of a-z, 0-9, '_', '-', '.', starting with a letter", k)
		}
		if !utf8.ValidString(v) || len(v) > maxLabelValue || strings.IndexFunc(v, isControlOrSeparator) >= 0 {
			return fault.Invalid(field, "LABEL_VALUE_INVALID",
				"value of label %q is invalid: use at most %d bytes of UTF-8 text without control characters", k, maxLabelValue)
		}
	}
	return nil
}

func validatePlacement(field, s string) error {
	if s != "" && !placementPattern.MatchString(s) {
		return fault.Invalid(field, "PLACEMENT_INVALID",
			"%s %q is invalid: use 1-63 characters of a-z, 0-9, '_', '-', starting with a letter", field, s)
	}
	return nil
}

func validateRequestID(field, s string) error {
	if s == "" {
		return nil
	}
	id, err := uuid.Parse(s)
	if err != nil || id.String() != strings.ToLower(s) {
		return fault.Invalid(field, "REQUEST_ID_INVALID", "%s must be a UUID like 123e4567-e89b-12d3-a456-426614174000", field)
	}
	return nil
}

func validateUID(field, s string) (string, error) {
	id, err := uuid.Parse(s)
	if err != nil || len(s) != 36 {
		return "", fault.Invalid(field, "UID_INVALID", "%s must be a tenant uid (a UUID like 123e4567-e89b-12d3-a456-426614174000)", field)
	}
	return id.String(), nil
}

func validateEtag(field, s string) error {
	if len(s) > 64 || strings.IndexFunc(s, unicode.IsControl) >= 0 {
		return fault.Invalid(field, "ETAG_INVALID", "%s is not an etag returned by this service", field)
	}
	return nil
}

// isControlOrSeparator reports control characters and the Unicode line and
// paragraph separators: display names end up in email subjects and logs,
// where either would act as a line break.
func isControlOrSeparator(r rune) bool {
	return unicode.IsControl(r) || unicode.In(r, unicode.Zl, unicode.Zp)
}
