package mail_test

import (
	"bytes"
	"crypto/tls"
	netmail "net/mail"
	"regexp"
	"testing"
	"time"

	"tenantry.dev/identity/internal/smtptest"

	"github.com/stretchr/testify/require"

	"tenantry.dev/identity/internal/mail"
)

func TestNewSMTPSenderChecksItsConfiguration(t *testing.T) {
	t.Parallel()
	valid := mail.SMTPConfig{Addr: "smtp.example.com:587", From: "Tenantry <no-reply@example.com>"}
	tests := []struct {
		name    string
		change  func(c *mail.SMTPConfig)
		wantErr string
	}{
		{"the defaults are fine", func(*mail.SMTPConfig) {}, ""},
		{"credentials with STARTTLS auto are fine", func(c *mail.SMTPConfig) { c.Username, c.Password = "u", "p" }, ""},
		{"credentials in clear to localhost are fine", func(c *mail.SMTPConfig) {
			c.Addr, c.StartTLS, c.Username, c.Password = "localhost:25", mail.StartTLSOff, "u", "p"
		}, ""},
		{"credentials in clear to a remote host are refused", func(c *mail.SMTPConfig) {
			c.StartTLS, c.Username, c.Password = mail.StartTLSOff, "u", "p"
		}, "in clear"},
		{"an address without a port is refused", func(c *mail.SMTPConfig) { c.Addr = "smtp.example.com" }, "host:port"},
		{"a from that is not an address is refused", func(c *mail.SMTPConfig) { c.From = "Tenantry" }, "from address"},
		{"a from with a line break is refused", func(c *mail.SMTPConfig) { c.From = "a@example.com\r\nBcc: b@example.com" }, "from address"},
		{"an unknown STARTTLS mode is refused", func(c *mail.SMTPConfig) { c.StartTLS = "sometimes" }, "auto, require or off"},
		{"a password without a username is refused", func(c *mail.SMTPConfig) { c.Password = "p" }, "without a username"},
		{"a HELO name with a line break is refused", func(c *mail.SMTPConfig) { c.HELO = "a\r\nRCPT TO:<x@y>" }, "HELO"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			cfg := valid
			tt.change(&cfg)
			_, err := mail.NewSMTPSender(cfg)
			if tt.wantErr == "" {
				require.NoError(t, err)
				return
			}
			require.ErrorContains(t, err, tt.wantErr)
		})
	}
}

func TestSMTPSenderTLSAndAuthentication(t *testing.T) {
	t.Parallel()
	serverTLS, roots := smtptest.SelfSignedTLS(t)
	trusting := &tls.Config{RootCAs: roots, MinVersion: tls.VersionTLS12}
	tests := []struct {
		name     string
		server   smtptest.Options
		startTLS mail.StartTLS
		client   *tls.Config
		user     string
		password string
		wantErr  string // "" when the mail must arrive
		wantTLS  bool
	}{
		{
			name:     "require upgrades and then authenticates",
			server:   smtptest.Options{TLS: serverTLS, Username: "relay", Password: "s3cret"},
			startTLS: mail.StartTLSRequire, client: trusting, user: "relay", password: "s3cret",
			wantTLS: true,
		},
		{
			name:     "auto upgrades when the server offers STARTTLS",
			server:   smtptest.Options{TLS: serverTLS},
			startTLS: mail.StartTLSAuto, client: trusting,
			wantTLS: true,
		},
		{
			name:     "off stays in clear",
			server:   smtptest.Options{TLS: serverTLS},
			startTLS: mail.StartTLSOff,
		},
		{
			name:     "auto authenticates in clear to localhost only",
			server:   smtptest.Options{Username: "relay", Password: "s3cret", AllowInsecureAuth: true},
			startTLS: mail.StartTLSAuto, user: "relay", password: "s3cret",
		},
		{
			name:     "require fails when the server offers no STARTTLS",
			server:   smtptest.Options{},
			startTLS: mail.StartTLSRequire,
			wantErr:  "does not offer STARTTLS",
		},
		{
			name:     "require fails on an untrusted certificate",
			server:   smtptest.Options{TLS: serverTLS},
			startTLS: mail.StartTLSRequire,
			wantErr:  "certificate",
		},
		{
			name:     "a wrong password fails",
			server:   smtptest.Options{TLS: serverTLS, Username: "relay", Password: "s3cret"},
			startTLS: mail.StartTLSRequire, client: trusting, user: "relay", password: "wrong",
			wantErr: "535",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			srv := smtptest.Start(t, tt.server)
			sender, err := mail.NewSMTPSender(mail.SMTPConfig{
				Addr: srv.Addr, From: "no-reply@tenantry.test", StartTLS: tt.startTLS,
				Username: tt.user, Password: tt.password, TLSConfig: tt.client, Timeout: 10 * time.Second,
			})
			require.NoError(t, err)

			err = sender.Send(t.Context(), newMessage("acme"))
			if tt.wantErr != "" {
				require.ErrorContains(t, err, tt.wantErr)
				require.NotErrorIs(t, err, mail.ErrPermanent, "fixable by configuration, so retried")
				require.Empty(t, srv.Messages())
				return
			}
			require.NoError(t, err)
			got := srv.Messages()
			require.Len(t, got, 1)
			require.Equal(t, tt.wantTLS, got[0].TLS)
			require.Equal(t, tt.user, got[0].User)
		})
	}
}

func TestSMTPSenderRefusesInvalidMessagesWithoutConnecting(t *testing.T) {
	t.Parallel()
	srv := smtptest.Start(t, smtptest.Options{})
	sender := newSender(t, srv.Addr)
	m := newMessage("acme")
	m.To = "victim@example.com\r\nBcc: attacker@example.com"
	err := sender.Send(t.Context(), m)
	require.ErrorIs(t, err, mail.ErrInvalidMessage)
	require.ErrorIs(t, err, mail.ErrPermanent)
	require.Zero(t, srv.RcptCount())
}

func TestAResentMailIsTheSameMail(t *testing.T) {
	t.Parallel()
	srv := smtptest.Start(t, smtptest.Options{})
	sender := newSender(t, srv.Addr)
	m := newMessage("acme")
	m.HTML = "<p>hello</p>"
	// As after a crash between the server's acceptance and the commit.
	require.NoError(t, sender.Send(t.Context(), m))
	require.NoError(t, sender.Send(t.Context(), m))

	got := srv.Messages()
	require.Len(t, got, 2)
	date := regexp.MustCompile(`(?m)^Date: .*\r\n`)
	first, second := date.ReplaceAll(got[0].Data, nil), date.ReplaceAll(got[1].Data, nil)
	require.Equal(t, string(first), string(second), "identical but for the Date header")
	msg, err := netmail.ReadMessage(bytes.NewReader(got[1].Data))
	require.NoError(t, err)
	require.Equal(t, "<"+m.ID+"@tenantry>", msg.Header.Get("Message-ID"))
}
