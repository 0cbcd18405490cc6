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

// forbidden says whether deliveries must not reach ip.
func forbidden(ip netip.Addr) bool {
	ip = ip.Unmap()
	return !ip.IsValid() || ip.IsLoopback() || ip.IsPrivate() || ip.IsLinkLocalUnicast() || ip.IsLinkLocalMulticast() ||
		ip.IsInterfaceLocalMulticast() || ip.IsMulticast() || ip.IsUnspecified() ||
		// 100.64.0.0/10, carrier-grade NAT: private in practice.
		netip.MustParsePrefix("100.64.0.0/10").Contains(ip)
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
			return fmt.Errorf("%s resolves to %s: %w", host, ip, errForbiddenAddress)
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
