package branding_test

import (
	"testing"

	"github.com/stretchr/testify/require"

	"tenantry.dev/identity/internal/branding"
)

func TestAccentTextIsTheMoreReadableOfWhiteAndDark(t *testing.T) {
	t.Parallel()
	for accent, want := range map[string]string{
		"":        branding.Light, // the default blue
		"#000000": branding.Light,
		"#ffffff": branding.Dark,
		"#ffeb3b": branding.Dark,  // yellow
		"#7fff00": branding.Dark,  // chartreuse
		"#8b0000": branding.Light, // dark red
	} {
		require.Equal(t, want, branding.Brand{Accent: accent}.AccentText(), accent)
	}
}

func TestValidateAccent(t *testing.T) {
	t.Parallel()
	for _, ok := range []string{"", "#2457c5", "#ABCDEF"} {
		require.NoError(t, branding.ValidateAccent(ok), ok)
	}
	for _, bad := range []string{"2457c5", "#245", "#2457c5;", "red", "#gggggg", "#2457c5 ", "#2457c5}body{"} {
		require.Error(t, branding.ValidateAccent(bad), bad)
	}
}

func TestValidateLogoURL(t *testing.T) {
	t.Parallel()
	for _, ok := range []string{"", "https://cdn.example.com/logo.png", "https://example.com:8443/a/b.svg?v=2"} {
		require.NoError(t, branding.ValidateLogoURL(ok), ok)
	}
	for _, bad := range []string{"http://example.com/logo.png", "javascript:alert(1)", "data:image/png;base64,AAAA",
		"//example.com/logo.png", "/logo.png", "https://user:pw@example.com/logo.png", "https:///logo.png",
		"https://example.com/a\"onerror=\"x", "https://example.com/a b"} {
		require.Error(t, branding.ValidateLogoURL(bad), bad)
	}
}

func TestCSSKeepsAnInvalidAccentOut(t *testing.T) {
	t.Parallel()
	require.Equal(t, ":root { --accent: #ffeb3b; --accent-text: #1d2430; }\n", branding.Brand{Accent: "#ffeb3b"}.CSS())
	require.Equal(t, ":root { --accent: #2457c5; --accent-text: #ffffff; }\n", branding.Brand{Accent: "red}body{x"}.CSS())
	require.Equal(t, "https://cdn.example.com", branding.Brand{LogoURL: "https://cdn.example.com/x.png"}.LogoOrigin())
}
