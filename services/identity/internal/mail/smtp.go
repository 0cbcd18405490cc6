package mail

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	netmail "net/mail"
	"net/smtp"
	"net/textproto"
	"time"
)

// StartTLS says whether SMTPSender upgrades its connection with STARTTLS.
type StartTLS string

// The STARTTLS modes.
const (
	// StartTLSAuto upgrades when the server offers STARTTLS and otherwise
	// carries on in clear, except that credentials are only ever sent over
	// TLS or to localhost.
	StartTLSAuto StartTLS = "auto"
	// StartTLSRequire fails a delivery when the server does not offer
	// STARTTLS or the handshake fails (including certificate verification).
	StartTLSRequire StartTLS = "require"
	// StartTLSOff never upgrades: for a relay on localhost or a test server.
	StartTLSOff StartTLS = "off"
)

// DefaultSMTPTimeout bounds one delivery, from connecting to the server's
// final reply, when SMTPConfig.Timeout is zero.
const DefaultSMTPTimeout = 30 * time.Second

// SMTPConfig configures an SMTPSender.
type SMTPConfig struct {
	// Addr is the relay's host:port, e.g. "smtp.example.com:587".
	Addr string
	// From is the sender, with an optional display name:
	// "Tenantry <no-reply@example.com>". Its address is also the envelope
	// sender (MAIL FROM), which receives bounces.
	From string
	// Username and Password, when Username is set, authenticate with PLAIN.
	// PLAIN sends the password as it is, so it is used only over TLS or to
	// localhost.
	Username string
	Password string
	// StartTLS is the upgrade policy; empty means StartTLSAuto.
	StartTLS StartTLS
	// Timeout bounds one delivery; zero means DefaultSMTPTimeout.
	Timeout time.Duration
	// HELO is the name this client gives in EHLO. It should be the host's
	// fully qualified name, which some relays check; empty means
	// "localhost".
	HELO string
	// TLSConfig, when set, is used for STARTTLS (e.g. a private CA). Its
	// ServerName defaults to Addr's host.
	TLSConfig *tls.Config
}

// SMTPSender delivers mail to an SMTP relay, one connection per message.
type SMTPSender struct {
	addr     string
	host     string
	from     *netmail.Address
	username string
	password string
	startTLS StartTLS
	timeout  time.Duration
	helo     string
	tls      *tls.Config
	now      func() time.Time // the Date header; replaced by tests
}

var _ Sender = (*SMTPSender)(nil)

// NewSMTPSender checks cfg and returns a sender for it. It does not connect:
// the relay may be down at start-up, and the outbox waits for it.
func NewSMTPSender(cfg SMTPConfig) (*SMTPSender, error) {
	host, _, err := net.SplitHostPort(cfg.Addr)
	if err != nil || host == "" {
		return nil, fmt.Errorf("mail: SMTP address %q must be host:port", cfg.Addr)
	}
	if err := checkHeaderText("from", cfg.From, maxAddressBytes); err != nil {
		return nil, fmt.Errorf("mail: SMTP from address: %w", err)
	}
	from, err := parseAddress(cfg.From)
	if err != nil {
		return nil, fmt.Errorf("mail: SMTP from address %q: %w", cfg.From, err)
	}
	mode := cfg.StartTLS
	if mode == "" {
		mode = StartTLSAuto
	}
	switch mode {
	case StartTLSAuto, StartTLSRequire, StartTLSOff:
	default:
		return nil, fmt.Errorf("mail: SMTP StartTLS mode %q must be auto, require or off", cfg.StartTLS)
	}
	if cfg.Username == "" && cfg.Password != "" {
		return nil, errors.New("mail: SMTP password given without a username")
	}
	if cfg.Username != "" && mode == StartTLSOff && !isLocalhost(host) {
		return nil, fmt.Errorf("mail: SMTP credentials for %s need StartTLS auto or require: PLAIN would send the password in clear", host)
	}
	helo := cfg.HELO
	if helo == "" {
		helo = "localhost"
	}
	if err := checkHeaderText("helo", helo, 255); err != nil {
		return nil, fmt.Errorf("mail: SMTP HELO name: %w", err)
	}
	timeout := cfg.Timeout
	if timeout <= 0 {
		timeout = DefaultSMTPTimeout
	}
	tlsConfig := &tls.Config{MinVersion: tls.VersionTLS12}
	if cfg.TLSConfig != nil {
		tlsConfig = cfg.TLSConfig.Clone()
	}
	if tlsConfig.ServerName == "" {
		tlsConfig.ServerName = host
	}
	return &SMTPSender{
		addr:     cfg.Addr,
		host:     host,
		from:     from,
		username: cfg.Username,
		password: cfg.Password,
		startTLS: mode,
		timeout:  timeout,
		helo:     helo,
		tls:      tlsConfig,
		now:      time.Now,
	}, nil
}

// isLocalhost reports whether host is one net/smtp's PLAIN auth trusts
// without TLS; matching its list exactly keeps the start-up check and the
// delivery-time check in agreement.
func isLocalhost(host string) bool {
	return host == "localhost" || host == "127.0.0.1" || host == "::1"
}

// Send delivers m over a new connection. A 5xx reply to the recipient or to
// the message is permanent (ErrPermanent); connection problems and other
// replies, including 5xx to authentication, which an operator can fix, are
// retried. Once the server has accepted the message, Send succeeds even if
// saying goodbye fails, since reporting failure would only cause a
// duplicate.
func (s *SMTPSender) Send(ctx context.Context, m Message) error {
	m, to, err := validate(m)
	if err != nil {
		return fmt.Errorf("mail: refuse to send %s mail %s: %w: %w", m.Kind, m.ID, ErrPermanent, err)
	}
	msg, err := compose(m, s.from, to, s.now())
	if err != nil {
		return fmt.Errorf("mail: refuse to send %s mail %s: %w: %w", m.Kind, m.ID, ErrPermanent, err)
	}

	ctx, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()
	conn, err := (&net.Dialer{}).DialContext(ctx, "tcp", s.addr)
	if err != nil {
		return fmt.Errorf("mail: connect to SMTP server %s: %w", s.addr, err)
	}
	// net/smtp has no contexts: the deadline bounds the whole exchange and
	// cancelling ctx interrupts a blocked read or write at once.
	deadline, _ := ctx.Deadline()
	_ = conn.SetDeadline(deadline)
	stop := context.AfterFunc(ctx, func() { _ = conn.SetDeadline(time.Unix(1, 0)) })
	defer stop()

	c, err := smtp.NewClient(conn, s.host)
	if err != nil {
		_ = conn.Close()
		return s.fail(ctx, "greeting", err, false)
	}
	defer c.Close() // a no-op error after Quit; closes the connection on failure
	if err := s.deliver(ctx, c, to.Address, msg); err != nil {
		return err
	}
	_ = c.Quit() // the message is accepted; a failed QUIT changes nothing
	return nil
}

// deliver runs the SMTP dialogue up to the server's acceptance of msg.
func (s *SMTPSender) deliver(ctx context.Context, c *smtp.Client, rcpt string, msg []byte) error {
	if err := c.Hello(s.helo); err != nil {
		return s.fail(ctx, "EHLO", err, false)
	}
	secure := false
	if s.startTLS != StartTLSOff {
		if ok, _ := c.Extension("STARTTLS"); ok {
			if err := c.StartTLS(s.tls); err != nil {
				return s.fail(ctx, "STARTTLS", err, false)
			}
			secure = true
		} else if s.startTLS == StartTLSRequire {
			return fmt.Errorf("mail: SMTP server %s does not offer STARTTLS, which StartTLS=require demands", s.addr)
		}
	}
	if s.username != "" {
		if !secure && !isLocalhost(s.host) {
			return fmt.Errorf("mail: SMTP server %s does not offer STARTTLS; refusing to send the password in clear", s.addr)
		}
		if ok, _ := c.Extension("AUTH"); !ok {
			return fmt.Errorf("mail: SMTP server %s does not offer AUTH, but credentials are configured", s.addr)
		}
		if err := c.Auth(smtp.PlainAuth("", s.username, s.password, s.host)); err != nil {
			return s.fail(ctx, "AUTH", err, false)
		}
	}
	if err := c.Mail(s.from.Address); err != nil {
		return s.fail(ctx, "MAIL FROM", err, false)
	}
	if err := c.Rcpt(rcpt); err != nil {
		return s.fail(ctx, "RCPT TO", err, true)
	}
	w, err := c.Data()
	if err != nil {
		return s.fail(ctx, "DATA", err, true)
	}
	if _, err := w.Write(msg); err != nil {
		_ = w.Close()
		return s.fail(ctx, "DATA", err, true)
	}
	// Closing sends the final dot and reads the server's verdict on the mail.
	if err := w.Close(); err != nil {
		return s.fail(ctx, "DATA", err, true)
	}
	return nil
}

// fail wraps an error of one SMTP step with the server's address. With
// permanentOn5xx, a 5xx reply is marked ErrPermanent: at RCPT TO and DATA
// it rejects this mail, not the configuration. An error caused by ctx ending
// says so, rather than showing only the i/o timeout it produced.
func (s *SMTPSender) fail(ctx context.Context, step string, err error, permanentOn5xx bool) error {
	var reply *textproto.Error
	if permanentOn5xx && errors.As(err, &reply) && reply.Code >= 500 && reply.Code < 600 {
		return fmt.Errorf("mail: SMTP server %s: %s: %w: %w", s.addr, step, ErrPermanent, err)
	}
	if ctxErr := ctx.Err(); ctxErr != nil {
		return fmt.Errorf("mail: SMTP server %s: %s: %w (%w)", s.addr, step, ctxErr, err)
	}
	return fmt.Errorf("mail: SMTP server %s: %s: %w", s.addr, step, err)
}
