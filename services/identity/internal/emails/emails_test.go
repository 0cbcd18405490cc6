package emails_test

import (
	"testing"

	"github.com/stretchr/testify/require"
	"golang.org/x/text/language"

	"tenantry.dev/identity/internal/branding"
	"tenantry.dev/identity/internal/emails"
)

// TestRenderEscapesWhatItIsGiven: the HTML part escapes names, links and
// texts (a tenant or user name is data, never markup), and both parts say
// the same.
func TestRenderEscapesWhatItIsGiven(t *testing.T) {
	t.Parallel()
	l := emails.Letter{
		Subject:    emails.Say("Welcome to %s", emails.TenantName),
		Paragraphs: []emails.Text{emails.Say("Your account at %s is ready.", emails.TenantName)},
		Action:     &emails.Action{Label: emails.Say("Sign up"), URL: `https://acme.example.com/signup?a=1&b="2"`},
	}
	r, err := emails.Render(l, language.English, branding.Brand{Name: `<b>Acme</b> & "Co"`, Accent: "#000000"})
	require.NoError(t, err)
	require.Equal(t, `Welcome to <b>Acme</b> & "Co"`, r.Subject)
	require.Contains(t, r.Text, `Your account at <b>Acme</b> & "Co" is ready.`)
	require.Contains(t, r.Text, "Sign up:\nhttps://acme.example.com/signup?a=1&b=\"2\"\n")
	require.NotContains(t, r.HTML, "<b>Acme")
	require.Contains(t, r.HTML, "&lt;b&gt;Acme&lt;/b&gt; &amp; &#34;Co&#34;")
	require.Contains(t, r.HTML, `href="https://acme.example.com/signup?a=1&amp;b=%222%22"`)
	require.Contains(t, r.HTML, "background:#000000;color:#ffffff")
	require.Equal(t, language.English, r.Lang)

	r, err = emails.Render(l, language.MustParse("de-AT"), branding.Brand{Name: "Acme"})
	require.NoError(t, err)
	require.Equal(t, "Willkommen bei Acme", r.Subject)
	require.Equal(t, language.German, r.Lang)
	require.Contains(t, r.HTML, `<html lang="de">`)
	require.Contains(t, r.HTML, "background:#2457c5", "the default accent")
}
