// Package i18n chooses the language of identity's pages and emails and
// translates their text.
//
// # Catalogs
//
// The source language is English, and an English text is its own message
// key (gettext's convention): a page or mail says {{.T "Log in"}} and shows
// the key itself where no translation exists, so an untranslated string is
// English, never a blank or an identifier. Each other language has two
// files in locales/, plain JSON objects from the English text to the
// translation that a translator edits without touching code:
//
//   - <lang>.json: the server's text (page templates and emails). Values
//     are fmt formats when their key is: "Welcome to %s" → "Willkommen bei %s",
//     the verbs in the same order (or indexed, %[2]s).
//   - <lang>.script.json: the text app.js writes into the pages, handed
//     to the script in the page (see ScriptMessages). Placeholders are
//     {0}, {1}, ... as app.js fills them in.
//   - <lang>.errors.json: the messages of identity's API errors (faults),
//     keyed by their English fmt format as the code writes it ("%s is
//     required"), with the server catalog's verbs. The API answers in
//     English (it is an API, and clients match nothing but the reason);
//     a page shows the error in its language by looking the English
//     message up here, on the server (Printer.APIMessage) and in app.js
//     (APIMessages): a formatted message is matched against the keys, the
//     text each verb wrote going unchanged into the translation's verb.
//
// A Printer looks a text up in its language's file (falling back to the
// key) and formats the arguments with golang.org/x/text/message, which
// writes numbers the language's way. A text without arguments is never
// formatted, so a "%" in it (or in an API's message shown as is) stays.
//
// To add a language: add its tag to Supported, and the three files, named
// by the tag's base language ("fr.json", "fr.script.json",
// "fr.errors.json"). The package's tests check that every text the
// templates, mails and app.js translate, and every fault message of the
// account package (and the packages its errors come from), has an entry in every language, with the same verbs or
// placeholders.
//
// # Choosing
//
// A request's language is, in this order: ?lang= in its URL (the pages'
// language links), the tenantry_lang cookie those links set, then its
// Accept-Language header, matched against Supported by language.Matcher
// (so "de-AT, en;q=0.5" is German and "fr" is English, the default).
// Mails go out in the language of the request that caused them (see
// WithLanguage).
package i18n

import (
	"context"
	"embed"
	"encoding/json"
	"fmt"
	"net/http"
	"path"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"golang.org/x/text/language"
	"golang.org/x/text/language/display"
	"golang.org/x/text/message"
)

// Supported are the languages of the pages and mails, the default first.
var Supported = []language.Tag{language.English, language.German}

// CookieName is the cookie that keeps the language a user chose on a page.
const CookieName = "tenantry_lang"

//go:embed locales
var locales embed.FS

var (
	matcher = language.NewMatcher(Supported)
	// servers and scripts are the server and script catalogs, by base
	// language.
	servers = map[string]map[string]string{}
	scripts = map[string]map[string]string{}
	// apiErrors are the API error catalogs, by base language.
	apiErrors = map[string]*errorCatalog{}
)

func init() {
	for _, tag := range Supported[1:] {
		base := Base(tag)
		var err error
		if servers[base], err = readCatalog(base + ".json"); err != nil {
			panic(err) // the embedded files are fixed at build time and tested
		}
		if scripts[base], err = readCatalog(base + ".script.json"); err != nil {
			panic(err)
		}
		errs, err := readCatalog(base + ".errors.json")
		if err != nil {
			panic(err)
		}
		apiErrors[base] = newErrorCatalog(errs)
	}
}

func readCatalog(name string) (map[string]string, error) {
	data, err := locales.ReadFile(path.Join("locales", name))
	if err != nil {
		return nil, fmt.Errorf("i18n: read catalog: %w", err)
	}
	var m map[string]string
	if err := json.Unmarshal(data, &m); err != nil {
		return nil, fmt.Errorf("i18n: catalog %s: %w", name, err)
	}
	return m, nil
}

// Base is tag's base language, as the pages' lang attribute and the
// catalogs' file names give it ("en", "de").
func Base(tag language.Tag) string {
	b, _ := tag.Base()
	return b.String()
}

// Match picks a supported language: the first of the given preferences
// (each a tag or an Accept-Language value; empty ones are skipped) that
// matches one, or English.
func Match(preferences ...string) language.Tag {
	var kept []string
	for _, p := range preferences {
		if p = strings.TrimSpace(p); p != "" {
			kept = append(kept, p)
		}
	}
	_, index := language.MatchStrings(matcher, kept...)
	return Supported[index]
}

// FromRequest is the language of a page's request: ?lang=, the
// tenantry_lang cookie, then Accept-Language.
func FromRequest(r *http.Request) language.Tag {
	var cookie string
	if c, err := r.Cookie(CookieName); err == nil {
		cookie = c.Value
	}
	return Match(r.URL.Query().Get("lang"), cookie, r.Header.Get("Accept-Language"))
}

type contextKey struct{}

// WithLanguage records in ctx the language of the request being served,
// for the mails it causes.
func WithLanguage(ctx context.Context, tag language.Tag) context.Context {
	return context.WithValue(ctx, contextKey{}, tag)
}

// FromContext is the language WithLanguage recorded, or English.
func FromContext(ctx context.Context) language.Tag {
	if tag, ok := ctx.Value(contextKey{}).(language.Tag); ok {
		return tag
	}
	return language.English
}

// Printer translates the server's text into one language.
type Printer struct {
	tag     language.Tag
	catalog map[string]string // nil for English
	p       *message.Printer
}

// NewPrinter translates into tag, which should be one of Supported (any
// other tag gets English).
func NewPrinter(tag language.Tag) Printer {
	return Printer{tag: tag, catalog: servers[Base(tag)], p: message.NewPrinter(tag)}
}

// Tag is the printer's language.
func (p Printer) Tag() language.Tag { return p.tag }

// T translates key, an English text, formatting args into it as fmt
// would: the translation, or key itself where the language has none.
func (p Printer) T(key string, args ...any) string {
	msg, ok := p.catalog[key]
	if !ok {
		msg = key
	}
	if len(args) == 0 {
		return msg
	}
	return p.Sprintf(msg, args...)
}

// Sprintf formats an already translated text in the printer's language
// (numbers written its way).
func (p Printer) Sprintf(format string, args ...any) string {
	if p.p == nil {
		return message.NewPrinter(language.English).Sprintf(format, args...)
	}
	return p.p.Sprintf(format, args...)
}

// ScriptMessages is the script catalog of tag: what app.js shows, from
// English to tag's language (empty for English).
func ScriptMessages(tag language.Tag) map[string]string {
	if m := scripts[Base(tag)]; m != nil {
		return m
	}
	return map[string]string{}
}

// Name is tag's language in its own words, for a link to choose it.
func Name(tag language.Tag) string {
	return display.Self.Name(tag)
}

// APIMessage translates the message of an API error (a fault's English
// message, formatted) into the printer's language: the entry of the
// errors catalog whose key it is, or whose key's format wrote it, with the
// texts the verbs wrote put into the translation's verbs; the message
// itself when no entry matches.
func (p Printer) APIMessage(msg string) string {
	if c := apiErrors[Base(p.tag)]; c != nil {
		return c.translate(msg)
	}
	return msg
}

// APIMessages is the errors catalog of tag, for app.js to translate the
// REST API's error messages as APIMessage does (empty for English).
func APIMessages(tag language.Tag) map[string]string {
	if c := apiErrors[Base(tag)]; c != nil {
		return c.entries
	}
	return map[string]string{}
}

// verb is one fmt verb of a format ("%s", "%[2]q", "%d"); "%%" is no verb.
var verb = regexp.MustCompile(`%(?:\[(\d+)\])?[-+# 0]*\d*(?:\.\d+)?[a-zA-Z%]`)

// errorCatalog is an errors catalog with a pattern for each key that has
// verbs, to recognise the messages its format wrote.
type errorCatalog struct {
	entries  map[string]string
	patterns []errorPattern
}

type errorPattern struct {
	match *regexp.Regexp // the key, each verb a lazy group
	msg   string         // the translation
}

func newErrorCatalog(entries map[string]string) *errorCatalog {
	c := &errorCatalog{entries: entries}
	for key, msg := range entries {
		if !verb.MatchString(strings.ReplaceAll(key, "%%", "")) {
			continue
		}
		var re strings.Builder
		re.WriteString("^")
		last := 0
		for _, loc := range verb.FindAllStringIndex(key, -1) {
			re.WriteString(regexp.QuoteMeta(key[last:loc[0]]))
			if key[loc[0]:loc[1]] == "%%" {
				re.WriteString("%")
			} else {
				re.WriteString("(.+?)")
			}
			last = loc[1]
		}
		re.WriteString(regexp.QuoteMeta(key[last:]) + "$")
		c.patterns = append(c.patterns, errorPattern{match: regexp.MustCompile(re.String()), msg: msg})
	}
	// The longest key first: a more specific format wins over a shorter
	// one that also matches (and the order does not depend on the map's).
	slices.SortFunc(c.patterns, func(a, b errorPattern) int {
		if d := len(b.match.String()) - len(a.match.String()); d != 0 {
			return d
		}
		return strings.Compare(a.match.String(), b.match.String())
	})
	return c
}

func (c *errorCatalog) translate(msg string) string {
	if t, ok := c.entries[msg]; ok {
		return t
	}
	for _, p := range c.patterns {
		args := p.match.FindStringSubmatch(msg)
		if args == nil {
			continue
		}
		// The texts are already written: each goes into the translation's
		// verb in the key's order (or the verb's index), never formatted
		// again (a %q would quote the quotes).
		next := 1
		return verb.ReplaceAllStringFunc(p.msg, func(v string) string {
			if v == "%%" {
				return "%"
			}
			i := next
			if m := verb.FindStringSubmatch(v); m[1] != "" {
				i, _ = strconv.Atoi(m[1])
			} else {
				next++
			}
			if i < 1 || i >= len(args) {
				return v
			}
			return args[i]
		})
	}
	return msg
}
