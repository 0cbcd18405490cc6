package restgateway

import (
	"net"
	"net/http"
	"net/netip"
	"strings"
	"unicode/utf8"
)

// Metadata keys the gateway sets on every call; client headers never reach
// them.
const (
	headerForwardedFor  = "x-forwarded-for"
	headerForwardedHost = "x-forwarded-host"
	// headerClientUserAgent carries the HTTP client's User-Agent.
	headerClientUserAgent = "x-client-user-agent"
)

// maxUserAgentBytes bounds the User-Agent the gateway passes on.
const maxUserAgentBytes = 512

// origin is what the gateway believes about where a request came from.
type origin struct {
	clientIP string // the client's address, without port
	host     string // the host asked for, lower case, without port
	// authority is the host asked for with its port, if the client gave
	// one, lower case.
	authority string
}

// originOf works out the client and host of r: from the TCP peer and the
// Host header, or, when the peer is a trusted proxy, from X-Forwarded-For
// (the rightmost address that is not a trusted proxy) and X-Forwarded-Host
// (the first, the host the client asked the outermost proxy for).
func originOf(r *http.Request, trusted []netip.Prefix) origin {
	peer := peerIP(r.RemoteAddr)
	o := origin{clientIP: peer.String(), host: stripPort(r.Host), authority: strings.ToLower(r.Host)}
	if !peer.IsValid() {
		o.clientIP = ""
	}
	if !isTrusted(peer, trusted) {
		return o
	}
	var hops []string
	for _, v := range r.Header.Values("X-Forwarded-For") {
		hops = append(hops, strings.Split(v, ",")...)
	}
	for i := len(hops) - 1; i >= 0; i-- {
		ip, err := netip.ParseAddr(strings.TrimSpace(hops[i]))
		if err != nil {
			break
		}
		o.clientIP = ip.Unmap().String()
		if !isTrusted(ip.Unmap(), trusted) {
			break
		}
	}
	if fh := r.Header.Get("X-Forwarded-Host"); fh != "" {
		first, _, _ := strings.Cut(fh, ",")
		if h := stripPort(strings.TrimSpace(first)); h != "" {
			o.host, o.authority = h, strings.ToLower(strings.TrimSpace(first))
		}
	}
	return o
}

func peerIP(remoteAddr string) netip.Addr {
	host, _, err := net.SplitHostPort(remoteAddr)
	if err != nil {
		host = remoteAddr
	}
	ip, err := netip.ParseAddr(host)
	if err != nil {
		return netip.Addr{}
	}
	return ip.Unmap()
}

func isTrusted(ip netip.Addr, trusted []netip.Prefix) bool {
	if !ip.IsValid() {
		return false
	}
	for _, p := range trusted {
		if p.Contains(ip) {
			return true
		}
	}
	return false
}

// stripPort returns the host of host[:port], lower case, without the
// brackets of an IPv6 address.
func stripPort(hostport string) string {
	hostport = strings.ToLower(strings.TrimSpace(hostport))
	if h, _, err := net.SplitHostPort(hostport); err == nil {
		return h
	}
	return strings.TrimSuffix(strings.TrimPrefix(hostport, "["), "]")
}

// truncateUTF8 cuts s to at most n bytes without splitting a character.
func truncateUTF8(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n]
}
