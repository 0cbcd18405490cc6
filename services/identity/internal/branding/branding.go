// Package branding is how a tenant's pages and emails look like the
// tenant's: its name, logo and accent colour (tenant settings), with the
// rules those settings must follow and the colour of text on the accent,
// derived so that it stays readable whatever colour a tenant picks.
package branding

import (
	"fmt"
	"math"
	"net/url"
	"regexp"
	"strconv"
	"strings"
)

// DefaultAccent is the accent of a tenant that has not chosen one.
const DefaultAccent = "#2457c5"

// Dark is the text colour on a light accent (the pages' own text colour);
// on a dark one text is white.
const (
	Dark  = "#1d2430"
	Light = "#ffffff"
)

// MaxLogoURLLength bounds a logo URL: it goes into every page and email.
const MaxLogoURLLength = 2048

// Brand is what a tenant's pages and emails show of it.
type Brand struct {
	// Name is the tenant's name as its users know it.
	Name string
	// LogoURL is an https URL of the tenant's logo, or "".
	LogoURL string
	// Accent is a "#rrggbb" colour for buttons and links; "" is
	// DefaultAccent.
	Accent string
}

// AccentColour is the brand's accent, or DefaultAccent.
func (b Brand) AccentColour() string {
	if b.Accent == "" {
		return DefaultAccent
	}
	return b.Accent
}

// AccentText is the colour of text on the accent: white or dark, whichever
// contrasts more with it (WCAG 2's contrast ratio).
func (b Brand) AccentText() string {
	l := luminance(b.AccentColour())
	if contrast(l, luminance(Light)) >= contrast(l, luminance(Dark)) {
		return Light
	}
	return Dark
}

// LogoOrigin is the origin of the logo's URL (scheme and host), which the
// pages' Content-Security-Policy must allow images from; "" without a logo.
func (b Brand) LogoOrigin() string {
	u, err := url.Parse(b.LogoURL)
	if b.LogoURL == "" || err != nil || u.Scheme != "https" || u.Host == "" {
		return ""
	}
	return "https://" + u.Host
}

// CSS is a stylesheet setting the brand's colours as custom properties
// (--accent, --accent-text), which app.css uses for buttons and links.
// Only colours ValidateAccent accepts get in; anything else is the default.
func (b Brand) CSS() string {
	accent := b.AccentColour()
	if ValidateAccent(accent) != nil {
		accent = DefaultAccent
	}
	b.Accent = accent
	return fmt.Sprintf(":root { --accent: %s; --accent-text: %s; }\n", accent, b.AccentText())
}

var hexColour = regexp.MustCompile(`^#[0-9a-fA-F]{6}$`)

// ValidateAccent accepts "" (the default) or a colour written #rrggbb.
func ValidateAccent(s string) error {
	if s != "" && !hexColour.MatchString(s) {
		return fmt.Errorf("accent colour must be written #rrggbb, as #2457c5")
	}
	return nil
}

// ValidateLogoURL accepts "" (no logo) or an absolute https URL with a host
// and no credentials: the pages and mails load it from their readers'
// browsers, and a plain http logo would be blocked as mixed content or
// leak the reader to any network on the way.
func ValidateLogoURL(s string) error {
	if s == "" {
		return nil
	}
	if len(s) > MaxLogoURLLength {
		return fmt.Errorf("logo URL must be at most %d characters", MaxLogoURLLength)
	}
	u, err := url.Parse(s)
	switch {
	case err != nil || !u.IsAbs() || u.Host == "" || u.Opaque != "":
		return fmt.Errorf("logo URL must be an absolute https URL")
	case u.Scheme != "https":
		return fmt.Errorf("logo URL must use https")
	case u.User != nil:
		return fmt.Errorf("logo URL must not hold a user name or password")
	case strings.ContainsAny(s, " \t\r\n\"'<>\\"):
		return fmt.Errorf("logo URL must not contain spaces, quotes or angle brackets")
	}
	return nil
}

// luminance is the relative luminance of a #rrggbb colour (WCAG 2).
func luminance(hex string) float64 {
	channel := func(i int) float64 {
		v, err := strconv.ParseUint(hex[i:i+2], 16, 8)
		if err != nil {
			return 0
		}
		c := float64(v) / 255
		if c <= 0.03928 {
			return c / 12.92
		}
		return math.Pow((c+0.055)/1.055, 2.4)
	}
	if len(hex) != 7 {
		return 0
	}
	return 0.2126*channel(1) + 0.7152*channel(3) + 0.0722*channel(5)
}

// contrast is WCAG 2's contrast ratio of two luminances, from 1 to 21.
func contrast(a, b float64) float64 {
	if a < b {
		a, b = b, a
	}
	return (a + 0.05) / (b + 0.05)
}
