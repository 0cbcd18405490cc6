// Package emails renders identity's emails: a plain-text part from a
// text/template and an HTML part from an html/template (templates/), in
// the reader's language, with the tenant's branding (name, logo, accent
// colour). What each email says is a Letter, whose texts are English keys
// of the i18n catalogs; both parts say the same thing.
package emails

import (
	"bytes"
	"embed"
	"fmt"
	htmltemplate "html/template"
	"strings"
	texttemplate "text/template"

	"golang.org/x/text/language"

	"tenantry.dev/identity/internal/branding"
	"tenantry.dev/identity/internal/i18n"
)

//go:embed templates
var templates embed.FS

var (
	textLayout = texttemplate.Must(texttemplate.ParseFS(templates, "templates/layout.txt"))
	htmlLayout = htmltemplate.Must(htmltemplate.ParseFS(templates, "templates/layout.html"))
)

// Text is a text to translate: an English key of the catalogs and what
// goes into its verbs.
type Text struct {
	Key  string
	Args []any
}

// TenantName, as an argument of a Text, is the tenant's name as its
// branding gives it (branding.Brand.Name), filled in when the email is
// rendered.
var TenantName any = tenantName{}

type tenantName struct{}

// Say is the Text of key with args.
func Say(key string, args ...any) Text { return Text{Key: key, Args: args} }

// Letter is what one email says.
type Letter struct {
	Subject Text
	// Paragraphs come first, then Code (a one-time code shown large),
	// then the Action (a button in HTML, a link in text), then After.
	Paragraphs []Text
	Code       string
	Action     *Action
	After      []Text
}

// Action is an email's link: what its button says and where it goes.
type Action struct {
	Label Text
	URL   string
}

// Rendered is an email ready for the outbox.
type Rendered struct {
	Subject, Text, HTML string
	// Lang is the language it is written in.
	Lang language.Tag
}

// view is what the layouts show: every text translated already.
type view struct {
	Lang              string
	Brand             branding.Brand
	Subject, Greeting string
	Paragraphs, After []string
	Code              string
	Action            *shownAction
	LinkHint, Footer  string
}

type shownAction struct{ Label, URL string }

// Render writes l in lang (one of i18n.Supported; any other is English)
// for brand.
func Render(l Letter, lang language.Tag, brand branding.Brand) (Rendered, error) {
	p := i18n.NewPrinter(i18n.Match(lang.String()))
	say := func(t Text) string {
		args := make([]any, len(t.Args))
		for i, a := range t.Args {
			if _, ok := a.(tenantName); ok {
				a = brand.Name
			}
			args[i] = a
		}
		return p.T(t.Key, args...)
	}
	v := view{
		Lang: i18n.Base(p.Tag()), Brand: brand, Subject: say(l.Subject), Greeting: p.T("Hello,"), Code: l.Code,
		LinkHint: p.T("If the button does not work, copy this link into your browser:"),
		Footer:   p.T("This email was sent by %s. Please do not reply to it.", brand.Name),
	}
	for _, t := range l.Paragraphs {
		v.Paragraphs = append(v.Paragraphs, say(t))
	}
	for _, t := range l.After {
		v.After = append(v.After, say(t))
	}
	if l.Action != nil {
		v.Action = &shownAction{Label: say(l.Action.Label), URL: l.Action.URL}
	}
	var text, html bytes.Buffer
	if err := textLayout.Execute(&text, v); err != nil {
		return Rendered{}, fmt.Errorf("emails: render text: %w", err)
	}
	if err := htmlLayout.Execute(&html, v); err != nil {
		return Rendered{}, fmt.Errorf("emails: render HTML: %w", err)
	}
	return Rendered{Subject: v.Subject, Text: strings.TrimLeft(text.String(), "\n"), HTML: html.String(), Lang: p.Tag()}, nil
}
