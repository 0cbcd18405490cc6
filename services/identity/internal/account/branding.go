package account

import (
	"strings"

	"tenantry.dev/identity/internal/branding"
	"tenantry.dev/kit/tenancy"
	"tenantry.dev/platform/fault"
	"tenantry.dev/platform/tenantname"
)

// TenantName is how pages and mails name t when its settings give no
// display name: the registry's display name, cleaned, or its slug.
func TenantName(t tenancy.Tenant) string { return tenantName(t) }

// BrandOf is how t's pages and mails look under its settings: the
// settings' display name (else TenantName), logo and accent colour.
func BrandOf(t tenancy.Tenant, s Settings) branding.Brand {
	b := branding.Brand{Name: s.DisplayName, LogoURL: s.LogoURL, Accent: s.AccentColor}
	if b.Name == "" {
		b.Name = tenantName(t)
	}
	return b
}

// addBranding checks the branding up changes: a display name the
// registry's rules accept (tenantname.ValidateDisplayName: visible, no
// line breaks or direction overrides) or "", an https logo URL, a
// #rrggbb accent colour.
func (bad *fieldErrors) addBranding(up SettingsUpdate) {
	if up.DisplayName != nil && *up.DisplayName != "" {
		bad.add(tenantname.ValidateDisplayName("settings.display_name", *up.DisplayName))
	}
	if up.LogoURL != nil {
		if err := branding.ValidateLogoURL(*up.LogoURL); err != nil {
			bad.add(fault.Invalid("settings.logo_url", "LOGO_URL_INVALID", "logo_url: %s", err.Error()))
		}
	}
	if up.AccentColor != nil {
		if err := branding.ValidateAccent(*up.AccentColor); err != nil {
			bad.add(fault.Invalid("settings.accent_color", "ACCENT_COLOR_INVALID", "accent_color: %s", err.Error()))
		}
	}
}

// applyBranding sets the branding up changes in s, and the deletion grace
// period.
func (up SettingsUpdate) applyBranding(s *Settings) {
	if up.DisplayName != nil {
		s.DisplayName = strings.TrimSpace(*up.DisplayName)
	}
	if up.LogoURL != nil {
		s.LogoURL = *up.LogoURL
	}
	if up.AccentColor != nil {
		s.AccentColor = strings.ToLower(*up.AccentColor)
	}
	if up.DeletionGraceDays != nil {
		s.DeletionGraceDays = *up.DeletionGraceDays
	}
}
