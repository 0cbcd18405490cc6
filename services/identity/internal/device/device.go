// Package device names the device and browser of a session from its
// User-Agent header, for people to recognise their sessions ("Firefox 120 ·
// Windows") instead of reading a raw User-Agent. It uses
// github.com/medama-io/go-useragent, a maintained parser with its own
// embedded rules, rather than rules of our own.
package device

import (
	"strings"

	"github.com/medama-io/go-useragent"
)

// maxUserAgent bounds what is parsed: the gateway already truncates
// User-Agent values, and a name needs only the start of one.
const maxUserAgent = 512

// Name is a readable name of the browser and system userAgent describes:
// "Browser Major · OS", with "· Mobile" or "· Tablet" for such devices;
// "" when it names no browser the parser knows (a gRPC client, a script),
// so that callers can show the raw value instead. The parts are names,
// not words, so the name needs no translation.
func Name(userAgent string) string {
	if userAgent == "" {
		return ""
	}
	if len(userAgent) > maxUserAgent {
		userAgent = userAgent[:maxUserAgent]
	}
	ua := useragent.NewParser().Parse(userAgent) // the parser is built once
	browser := string(ua.Browser())
	if browser == "" || ua.IsBot() {
		return ""
	}
	if major := ua.BrowserVersionMajor(); major != "" {
		browser += " " + major
	}
	parts := []string{browser}
	if os := string(ua.OS()); os != "" {
		parts = append(parts, os)
	}
	if ua.IsMobile() || ua.IsTablet() {
		parts = append(parts, string(ua.Device()))
	}
	return strings.Join(parts, " · ")
}
