package webhook

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"net/url"
	"syscall"
)

// Guard keeps deliveries away from addresses inside the service's own
// network (server-side request forgery): a tenant admin chooses the URL,
// and a URL naming 127.0.0.1, 10.0.0.5 or the cloud's metadata address
// would otherwise make identity POST to services that trust it.
type Guard struct {
	// AllowPrivate lets URLs reach loopback, private and link-local
	// addresses (tests, and installations whose receivers are internal).
	AllowPrivate bool
}

// errForbiddenAddress is why a URL or a connection is refused.
var errForbiddenAddress = errors.New("the address is loopback, private, link-local or otherwise not public")

// forbiddenPrefixes are the ranges, beyond what netip's predicates name,
// that deliveries must not reach.
var forbiddenPrefixes = []netip.Prefix{
	netip.MustParsePrefix("0.0.0.0/8"),      // "this network": Linux dials 0.x as the local host
	netip.MustParsePrefix("100.64.0.0/10"),  // carrier-grade NAT: private in practice
	netip.MustParsePrefix("192.0.0.0/24"),   // IETF protocol assignments (DS-Lite, NAT64 discovery)
	netip.MustParsePrefix("198.18.0.0/15"),  // benchmarking, used inside networks
	netip.MustParsePrefix("240.0.0.0/4"),    // reserved, and the broadcast address
	netip.MustParsePrefix("64:ff9b:1::/48"), // local-use NAT64 (RFC 8215): where the IPv4 address sits is the operator's choice
	netip.MustParsePrefix("2001::/32"),      // Teredo: reaches an obfuscated IPv4 address through a relay
	netip.MustParsePrefix("fec0::/10"),      // site-local, deprecated but still routed by some
	netip.MustParsePrefix("100::/64"),       // discard-only
}

// Prefixes of IPv6 addresses that carry an IPv4 address a translator or a
// relay delivers to: a connection to them reaches that IPv4 address, so
// it is checked as the IPv4 address it is.
var (
	// ::a.b.c.d, IPv4-compatible (deprecated; :: and ::1 fall in it too).
	ipv4Compatible = netip.MustParsePrefix("::/96")
	// ::ffff:0:a.b.c.d, IPv4-translated (SIIT, RFC 2765).
	ipv4Translated = netip.MustParsePrefix("::ffff:0:0:0/96")
	// 64:ff9b::a.b.c.d, the well-known NAT64 prefix (RFC 6052): on an
	// IPv6-only network with NAT64, 64:ff9b::a00:5 is 10.0.0.5.
	nat64 = netip.MustParsePrefix("64:ff9b::/96")
	// 2002:AABB:CCDD::/48 is 6to4 for AA.BB.CC.DD.
	sixToFour = netip.MustParsePrefix("2002::/16")
)

// embeddedIPv4 returns the IPv4 address that ip, an IPv6 address, leads
// to through a translator or a relay, if it is of such a form.
// IPv4-mapped addresses are unmapped before (forbidden).
func embeddedIPv4(ip netip.Addr) (netip.Addr, bool) {
	b := ip.As16()
	switch {
	case ipv4Compatible.Contains(ip), ipv4Translated.Contains(ip), nat64.Contains(ip):
		return netip.AddrFrom4([4]byte(b[12:16])), true
	case sixToFour.Contains(ip):
		return netip.AddrFrom4([4]byte(b[2:6])), true
	}
	return netip.Addr{}, false
}

// forbidden says whether deliveries must not reach ip. An IPv6 address
// embedding an IPv4 one (NAT64, 6to4, IPv4-compatible or -translated) is
// forbidden when that IPv4 address is.
func forbidden(ip netip.Addr) bool {
	// A zone would keep the prefixes below from matching (netip never
	// matches a zoned address against a prefix).
	ip = ip.WithZone("").Unmap()
	if !ip.IsValid() || ip.IsLoopback() || ip.IsPrivate() || ip.IsLinkLocalUnicast() || ip.IsLinkLocalMulticast() ||
		ip.IsInterfaceLocalMulticast() || ip.IsMulticast() || ip.IsUnspecified() {
		return true
	}
	for _, p := range forbiddenPrefixes {
		if p.Contains(ip) {
			return true
		}
	}
	if v4, ok := embeddedIPv4(ip); ok {
		return forbidden(v4)
	}
	return false
}

// CheckURL resolves u's host and refuses it when any of its addresses is
// forbidden; it is what an admin hears at once. The connection is checked
// again (Control), since DNS may answer differently at delivery.
func (g Guard) CheckURL(ctx context.Context, u *url.URL) error {
	if g.AllowPrivate {
		return nil
	}
	host := u.Hostname()
	if ip, err := netip.ParseAddr(host); err == nil {
		if forbidden(ip) {
			return fmt.Errorf("%s: %w", host, errForbiddenAddress)
		}
		return nil
	}
	addrs, err := net.DefaultResolver.LookupNetIP(ctx, "ip", host)
	if err != nil {
		return fmt.Errorf("%s does not resolve: %w", host, err)
	}
	for _, ip := range addrs {
		if forbidden(ip) {
			// Not which address: the error may reach the admin, who
			// would otherwise learn what internal names resolve to.
			return fmt.Errorf("%s: %w", host, errForbiddenAddress)
		}
	}
	return nil
}

// Control is a net.Dialer Control function refusing connections to
// forbidden addresses: it sees the address actually dialled, after DNS.
func (g Guard) Control(_, address string, _ syscall.RawConn) error {
	if g.AllowPrivate {
		return nil
	}
	ap, err := netip.ParseAddrPort(address)
	if err != nil {
		return fmt.Errorf("webhook: dial %s: %w", address, err)
	}
	if forbidden(ap.Addr()) {
		return fmt.Errorf("webhook: dial %s: %w", address, errForbiddenAddress)
	}
	return nil
}
