package pages

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"html/template"
	"net/http"
	"net/url"
	"slices"
	"strings"

	"tenantry.dev/identity/internal/branding"
	"tenantry.dev/identity/internal/i18n"
)

// view is what a page's template shows: empty for a page as first opened,
// filled in by the server's answer to its form.
type view struct {
	// Token is the single-use token of the email link that opened a page
	// (verification, reset, invitation), carried by its form in a hidden
	// field so that the form works without the script.
	Token string
	// Next is where the login page goes once logged in; only ever a value
	// IsLocalPath accepts.
	Next string
	// MFAChallenge is the login's MFA challenge once the password was
	// right and the account has a second factor: the login page shows the
	// code form, which carries it in a hidden field.
	MFAChallenge string
	// Enrollment is the authenticator app to enrol at this login, when
	// the tenant requires a factor the account has none of.
	Enrollment *Enrollment
	// RecoveryCodes are the account's new recovery codes, shown once
	// after an enrolment at login.
	RecoveryCodes []string
	// RememberDays is for how many days the code form may remember the
	// browser (0: the box is not shown).
	RememberDays int
	// PasskeyOnly hides the code form of the second step: the account's
	// only factor is a passkey (see LoginStep).
	PasskeyOnly bool
	// ByEmailCode makes the login page link to the login by a code by
	// email; LoginCodeToken is that login's token once a code was asked
	// for (its page then asks for the code).
	ByEmailCode    bool
	LoginCodeToken string
	// Message is the page's message; Failed makes it an error.
	Message string
	Failed  bool
	// Status is the verification page's text about its link.
	Status string
	// Providers are the login and sign-up pages' "Log in with ..." buttons.
	Providers []SignInProvider
	// Link is the link page's pending identity, when LinkPending.
	Link        PendingLink
	LinkPending bool
	// Done says the form did what it was for and is not shown again (a
	// used link's form would only fail).
	Done bool
	// Lang is the page's language (its <html lang>), and Languages the
	// links to the page in each language.
	Lang      string
	Languages []LanguageLink

	// Brand is the tenant's name, logo and colours, shown on every page.
	Brand branding.Brand

	// printer translates the page's text: the templates call T, and so do
	// the actions for text they make up (the zero printer is English).
	printer i18n.Printer

	fields []string          // the form's inputs a person fills in, in order (see action)
	values map[string]string // what was typed, to fill the form again; never a password
	errors map[string]string // each field's error, by field name
	focus  string            // the first field with an error, which gets the focus
}

// field is one input of a form, for the "field" template of parts.html.
type field struct {
	Name, Label, Type, Autocomplete string
	// Also is another name the API may give the field in its errors, for
	// the script (data-also).
	Also     string
	Required bool
	Value    string
	Error    string
	Focus    bool
}

// Field describes the input name for the template, with its value and
// error in v. flags are "required" and "also=<name>".
func (v *view) Field(name, label, typ, autocomplete string, flags ...string) field {
	f := field{Name: name, Label: v.T(label), Type: typ, Autocomplete: autocomplete,
		Error: v.errors[name], Focus: name == v.focus}
	if typ != "password" {
		f.Value = v.values[name]
	}
	for _, flag := range flags {
		if also, ok := strings.CutPrefix(flag, "also="); ok {
			f.Also = also
		} else if flag == "required" {
			f.Required = true
		}
	}
	return f
}

// keep records a value typed in a field, to show it again. Passwords are
// never kept (Field does not show them either).
func (v *view) keep(name, value string) {
	if v.values == nil {
		v.values = map[string]string{}
	}
	v.values[name] = value
}

// succeed sets the page's message for a form that did what it was for.
func (v *view) succeed(message string) {
	v.Message, v.Failed = message, false
}

// fail shows err, an action's error, on the page and returns the HTTP
// status to answer with: each field violation next to its field when the
// form has that field (all of them at once), the rest in the message. An
// error that is not a *FormError says no more than the API would: an
// internal error.
func (v *view) fail(err error) int {
	var fe *FormError
	if !errors.As(err, &fe) {
		fe = &FormError{Status: http.StatusInternalServerError, Message: v.T("internal error")}
	}
	v.Failed = true
	// The API's messages are English; the page shows them in its language
	// (see i18n.Printer.APIMessage). A message the errors catalog lacks
	// (such as the pages' own "The form could not be read") stays English
	// here and is translated as the page's text when shown.
	message := v.printer.APIMessage(fe.Message)
	var elsewhere []string
	for _, violation := range fe.Fields {
		violation.Description = v.printer.APIMessage(violation.Description)
		name := strings.TrimPrefix(violation.Field, "user.")
		if !slices.Contains(v.fields, name) {
			elsewhere = append(elsewhere, violation.Description)
			continue
		}
		if v.errors == nil {
			v.errors = map[string]string{}
		}
		if v.errors[name] != "" {
			v.errors[name] += " " + violation.Description
		} else {
			v.errors[name] = violation.Description
		}
	}
	// The focus goes to the first field of the form with an error, in the
	// form's order.
	for _, name := range v.fields {
		if v.errors[name] != "" {
			v.focus = name
			break
		}
	}
	switch {
	case v.focus == "":
		v.Message = message
	case len(elsewhere) > 0:
		v.Message = v.T("Please correct the fields marked below.") + " " + strings.Join(elsewhere, " ")
	default:
		v.Message = v.T("Please correct the fields marked below.")
	}
	if fe.Status == 0 {
		return http.StatusInternalServerError
	}
	return fe.Status
}

// EnrollmentQR is the enrolment's QR code as a data: URL for an img (the
// pages' Content-Security-Policy allows data: images), or "" without one.
func (v *view) EnrollmentQR() template.URL {
	if v.Enrollment == nil || len(v.Enrollment.QRCodePNG) == 0 {
		return ""
	}
	// The image is identity's own PNG, never anything a request carried.
	return template.URL("data:image/png;base64," + base64.StdEncoding.EncodeToString(v.Enrollment.QRCodePNG))
}

// LoggedInNext is where the link after the recovery codes goes: Next, or
// the account page.
func (v *view) LoggedInNext() string {
	if v.Next != "" {
		return v.Next
	}
	return "/account"
}

// LanguageLink is a link to the page in another language.
type LanguageLink struct {
	// Lang is the language's tag, Name its name in itself ("Deutsch"),
	// URL the page's URL with ?lang= set to it.
	Lang, Name, URL string
	// Current says the page is in this language.
	Current bool
}

// TokenFree says the page was not opened with an email link's token: only
// then does it link to itself in other languages (which would lose the
// token, or carry it in a link).
func (v *view) TokenFree() bool { return v.Token == "" }

// T translates key, an English text of the page, into the page's language
// (see i18n.Printer.T). The texts the pages set (Message, Status) are kept
// in English and translated when shown; an API's error is translated by
// fail from the errors catalog already, and shows as it is here.
func (v *view) T(key string, args ...any) string {
	return v.printer.T(key, args...)
}

// TStrong is T for a text shown as HTML with its first argument in bold
// (an email address); every argument is escaped, and so is the
// translation before they go in.
func (v *view) TStrong(key string, args ...string) template.HTML {
	escaped := make([]any, len(args))
	for i, a := range args {
		escaped[i] = template.HTMLEscapeString(a)
		if i == 0 {
			escaped[i] = "<strong>" + template.HTMLEscapeString(a) + "</strong>"
		}
	}
	return template.HTML(v.printer.Sprintf(template.HTMLEscapeString(v.printer.T(key)), escaped...)) // #nosec G203 -- escaped above
}

// ScriptMessagesJSON is the catalog of the texts app.js writes into the
// page, in the page's language, as JSON for the meta element the script
// reads (the template escapes it as an attribute value).
func (v *view) ScriptMessagesJSON() (string, error) {
	b, err := json.Marshal(i18n.ScriptMessages(v.printer.Tag()))
	return string(b), err
}

// APIMessagesJSON is the catalog of the API's error messages in the
// page's language (see i18n.APIMessages), for app.js as ScriptMessagesJSON.
func (v *view) APIMessagesJSON() (string, error) {
	b, err := json.Marshal(i18n.APIMessages(v.printer.Tag()))
	return string(b), err
}

// localize sets v's language from r (see i18n.FromRequest) and its links
// to the page in the other languages, which keep the rest of r's query.
func (v *view) localize(r *http.Request) {
	tag := i18n.FromRequest(r)
	v.printer, v.Lang = i18n.NewPrinter(tag), i18n.Base(tag)
	v.Languages = v.Languages[:0]
	for _, other := range i18n.Supported {
		// Only the login's next is kept: never, say, a federation_error,
		// whose text a link could choose, nor an email link's token, a
		// secret that no link may carry (the footer leaves a page opened
		// with one without language links; see TokenFree).
		q := url.Values{}
		if next := r.URL.Query().Get("next"); next != "" {
			q.Set("next", next)
		}
		q.Set("lang", i18n.Base(other))
		v.Languages = append(v.Languages, LanguageLink{
			Lang: i18n.Base(other), Name: i18n.Name(other), URL: r.URL.Path + "?" + q.Encode(), Current: other == tag,
		})
	}
}
