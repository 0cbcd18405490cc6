package server_test

import (
	"mime"
	"net/mail"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/protobuf/types/known/fieldmaskpb"

	identityv1 "tenantry.dev/gen/tenantry/identity/v1"
	"tenantry.dev/kit/registrytest"
)

// TestABrandedMailInGerman: a tenant's branding settings are validated,
// and a mail caused by a call whose caller prefers German reaches the SMTP
// server in German, as multipart/alternative with a text and an HTML part,
// both carrying the tenant's name, and the HTML its logo and colours.
func TestABrandedMailInGerman(t *testing.T) {
	t.Parallel()
	s := startSystem(t, "brand")
	update := func(settings *identityv1.TenantSettings, paths ...string) error {
		_, err := s.users.UpdateTenantSettings(asOperator("brand"), &identityv1.UpdateTenantSettingsRequest{
			Settings: settings, UpdateMask: &fieldmaskpb.FieldMask{Paths: paths},
		})
		return err
	}
	for _, bad := range []struct {
		settings *identityv1.TenantSettings
		path     string
	}{
		{&identityv1.TenantSettings{LogoUrl: "http://cdn.example.com/logo.png"}, "logo_url"},
		{&identityv1.TenantSettings{LogoUrl: "javascript:alert(1)"}, "logo_url"},
		{&identityv1.TenantSettings{AccentColor: "red"}, "accent_color"},
		{&identityv1.TenantSettings{AccentColor: "#12345g"}, "accent_color"},
		{&identityv1.TenantSettings{DisplayName: "Evil\u202emoc.elgoog"}, "display_name"},
	} {
		st := requireCode(t, update(bad.settings, bad.path), codes.InvalidArgument)
		require.Contains(t, st.Message(), bad.path)
	}
	require.NoError(t, update(&identityv1.TenantSettings{DisplayName: "Brand Co", LogoUrl: "https://cdn.example.com/logo.png",
		AccentColor: "#FFEB3B"}, "display_name", "logo_url", "accent_color"))
	got, err := s.users.GetTenantSettings(asOperator("brand"), &identityv1.GetTenantSettingsRequest{})
	require.NoError(t, err)
	require.Equal(t, "Brand Co", got.GetSettings().GetDisplayName())
	require.Equal(t, "#ffeb3b", got.GetSettings().GetAccentColor())

	const addr = "lena@example.com"
	german := metadata.AppendToOutgoingContext(in("brand"), "accept-language", "de-CH, en;q=0.5")
	_, err = s.auth.RequestPasswordReset(german, &identityv1.RequestPasswordResetRequest{Email: addr})
	require.NoError(t, err)

	var parsed *mail.Message
	var parts map[string]string
	registrytest.Eventually(t, "the mail to "+addr, func() bool {
		for _, m := range s.smtp.Messages() {
			if strings.Join(m.To, ",") != addr {
				continue
			}
			var err error
			parsed, err = mail.ReadMessage(strings.NewReader(string(m.Data)))
			require.NoError(t, err)
			parts, err = mailParts(parsed)
			require.NoError(t, err)
			return true
		}
		return false
	})
	require.True(t, strings.HasPrefix(parsed.Header.Get("Content-Type"), "multipart/alternative;"), parsed.Header.Get("Content-Type"))
	subject, err := new(mime.WordDecoder).DecodeHeader(parsed.Header.Get("Subject"))
	require.NoError(t, err)
	require.Equal(t, "Passwort-Zurücksetzung bei Brand Co", subject)

	text, html := parts["text/plain"], parts["text/html"]
	require.Contains(t, text, "Hallo,")
	require.Contains(t, text, "aber es gibt kein Konto für "+addr)
	require.Contains(t, text, "Konto erstellen:\r\nhttp://brand.")
	require.Contains(t, text, "Brand Co")
	require.NotContains(t, text, "Hello,")

	require.Contains(t, html, `<html lang="de">`)
	require.Contains(t, html, `<img src="https://cdn.example.com/logo.png"`)
	require.Contains(t, html, "Brand Co")
	require.Contains(t, html, "border-bottom:4px solid #ffeb3b")
	// The button is the accent colour, its text the dark one that reads on it.
	require.Contains(t, html, "background:#ffeb3b;color:#1d2430")
	require.Contains(t, html, "Konto erstellen")
}

// TestPreviewEmail: a tenant admin previews each kind of mail in each
// language with the tenant's branding; an unknown kind is refused, and a
// user who is no admin may not preview.
func TestPreviewEmail(t *testing.T) {
	t.Parallel()
	s := startSystem(t, "preview")
	_, err := s.users.UpdateTenantSettings(asOperator("preview"), &identityv1.UpdateTenantSettingsRequest{
		Settings:   &identityv1.TenantSettings{DisplayName: "Preview GmbH", AccentColor: "#8b0000"},
		UpdateMask: &fieldmaskpb.FieldMask{Paths: []string{"display_name", "accent_color"}},
	})
	require.NoError(t, err)
	accounts := identityv1.NewAccountServiceClient(s.conn)

	kinds, err := accounts.ListEmailKinds(asOperator("preview"), &identityv1.ListEmailKindsRequest{})
	require.NoError(t, err)
	require.Contains(t, kinds.GetKinds(), "invitation")
	require.Equal(t, []string{"en", "de"}, kinds.GetLanguages())
	for _, kind := range kinds.GetKinds() {
		for _, lang := range kinds.GetLanguages() {
			p, err := accounts.PreviewEmail(asOperator("preview"), &identityv1.PreviewEmailRequest{Kind: kind, Language: lang})
			require.NoError(t, err, kind)
			require.Equal(t, lang, p.GetLanguage())
			require.NotEmpty(t, p.GetSubject(), kind)
			require.Contains(t, p.GetText(), "Preview GmbH", kind)
			require.Contains(t, p.GetHtml(), `<html lang="`+lang+`">`, kind)
			require.Contains(t, p.GetHtml(), "#8b0000", kind)
		}
	}
	p, err := accounts.PreviewEmail(asOperator("preview"), &identityv1.PreviewEmailRequest{Kind: "invitation", Language: "de-AT"})
	require.NoError(t, err)
	require.Equal(t, "Sie sind zu Preview GmbH eingeladen", p.GetSubject())
	require.Contains(t, p.GetHtml(), "background:#8b0000;color:#ffffff")
	require.Contains(t, p.GetText(), "Einladung annehmen:")

	requireCode(t, func() error {
		_, err := accounts.PreviewEmail(asOperator("preview"), &identityv1.PreviewEmailRequest{Kind: "no_such_kind"})
		return err
	}(), codes.InvalidArgument)
	user := s.signUpAndLogin("preview", "plain@example.com")
	requireCode(t, func() error {
		_, err := accounts.PreviewEmail(in("preview", user.GetAccessToken()), &identityv1.PreviewEmailRequest{Kind: "invitation"})
		return err
	}(), codes.PermissionDenied)
}
