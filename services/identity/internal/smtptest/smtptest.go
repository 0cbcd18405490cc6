// Package smtptest runs a real SMTP server (go-smtp) on 127.0.0.1 for
// tests: it records what it accepts, can be told to reject recipients or
// messages, can require PLAIN credentials or offer STARTTLS, and can be
// stopped and started again on the same address.
package smtptest

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"io"
	"log"
	"math/big"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"
	"github.com/stretchr/testify/require"
)

// Options configures a test SMTP server.
type Options struct {
	// TLS, when set, makes the server offer STARTTLS.
	TLS *tls.Config
	// Username and Password, when set, are the only accepted PLAIN
	// credentials, and MAIL FROM requires them.
	Username, Password string
	// AllowInsecureAuth offers AUTH without TLS.
	AllowInsecureAuth bool
}

// Mail is one message the test server accepted.
type Mail struct {
	From string
	To   []string
	Data []byte
	TLS  bool   // delivered over STARTTLS
	User string // authenticated user, if any
}

// Server is a real SMTP server (go-smtp) on 127.0.0.1 that records what
// it accepts, can be told to reject recipients or messages, and can be
// stopped and started again on the same address.
type Server struct {
	t    *testing.T
	opts Options
	Addr string

	mu         sync.Mutex
	srv        *smtp.Server
	ln         net.Listener
	stopping   bool
	served     chan struct{} // closed when the running Serve returns
	received   []Mail
	rcpts      int // RCPT TO commands seen, accepted or not
	rejectRcpt *smtp.SMTPError
	rejectData *smtp.SMTPError
}

// Start starts a server that runs until the test ends.
func Start(t *testing.T, opts Options) *Server {
	t.Helper()
	s := &Server{t: t, opts: opts}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	s.Addr = ln.Addr().String()
	s.serve(ln)
	t.Cleanup(s.Stop)
	return s
}

// serve runs a new go-smtp server on ln (a closed server cannot restart).
func (s *Server) serve(ln net.Listener) {
	srv := smtp.NewServer(smtp.BackendFunc(func(c *smtp.Conn) (smtp.Session, error) {
		return &session{server: s, conn: c}, nil
	}))
	srv.Domain = "localhost"
	srv.TLSConfig = s.opts.TLS
	srv.AllowInsecureAuth = s.opts.AllowInsecureAuth
	srv.ReadTimeout = 10 * time.Second
	srv.WriteTimeout = 10 * time.Second
	srv.ErrorLog = log.New(io.Discard, "", 0)
	served := make(chan struct{})
	s.mu.Lock()
	s.srv, s.served, s.ln, s.stopping = srv, served, ln, false
	s.mu.Unlock()
	go func() {
		defer close(served)
		err := srv.Serve(ln)
		s.mu.Lock()
		stopping := s.stopping
		s.mu.Unlock()
		if err != nil && !errors.Is(err, smtp.ErrServerClosed) && !stopping {
			s.t.Errorf("smtp server: %v", err)
		}
	}()
}

// Stop closes the listener and every connection, so connecting fails with
// "connection refused" until restart.
func (s *Server) Stop() {
	s.mu.Lock()
	srv, served, ln := s.srv, s.served, s.ln
	s.srv, s.stopping = nil, true
	s.mu.Unlock()
	if srv == nil {
		return
	}
	// Close the listener ourselves too: a Close that comes before Serve has
	// registered the listener would otherwise leave Serve running forever.
	_ = ln.Close()
	_ = srv.Close()
	<-served
}

// Restart listens again on the same address.
func (s *Server) Restart() {
	s.t.Helper()
	ln, err := net.Listen("tcp", s.Addr)
	require.NoError(s.t, err)
	s.serve(ln)
}

// reply returns an SMTP error reply with code, or nil for 0.
func reply(code int) *smtp.SMTPError {
	if code == 0 {
		return nil
	}
	return &smtp.SMTPError{Code: code, EnhancedCode: smtp.EnhancedCodeNotSet, Message: "rejected by the test"}
}

// Reject makes the server answer RCPT TO and the end of DATA with the given
// codes; 0 accepts.
func (s *Server) Reject(rcptCode, dataCode int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.rejectRcpt, s.rejectData = reply(rcptCode), reply(dataCode)
}

// Messages returns what the server accepted so far.
func (s *Server) Messages() []Mail {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Mail(nil), s.received...)
}

// RcptCount returns how many RCPT TO commands the server saw: one per
// delivery attempt that got that far.
func (s *Server) RcptCount() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.rcpts
}

// session is one client connection's state.
type session struct {
	server *Server
	conn   *smtp.Conn
	user   string
	from   string
	to     []string
}

func (x *session) AuthMechanisms() []string {
	if x.server.opts.Username == "" {
		return nil
	}
	return []string{sasl.Plain}
}

func (x *session) Auth(string) (sasl.Server, error) {
	return sasl.NewPlainServer(func(_, username, password string) error {
		if username != x.server.opts.Username || password != x.server.opts.Password {
			return &smtp.SMTPError{Code: 535, EnhancedCode: smtp.EnhancedCode{5, 7, 8}, Message: "bad credentials"}
		}
		x.user = username
		return nil
	}), nil
}

func (x *session) Mail(from string, _ *smtp.MailOptions) error {
	if x.server.opts.Username != "" && x.user == "" {
		return smtp.ErrAuthRequired
	}
	x.from = from
	return nil
}

func (x *session) Rcpt(to string, _ *smtp.RcptOptions) error {
	x.server.mu.Lock()
	defer x.server.mu.Unlock()
	x.server.rcpts++
	if x.server.rejectRcpt != nil {
		return x.server.rejectRcpt
	}
	x.to = append(x.to, to)
	return nil
}

func (x *session) Data(r io.Reader) error {
	data, err := io.ReadAll(r)
	if err != nil {
		return err
	}
	x.server.mu.Lock()
	defer x.server.mu.Unlock()
	if x.server.rejectData != nil {
		return x.server.rejectData
	}
	_, isTLS := x.conn.TLSConnectionState()
	x.server.received = append(x.server.received, Mail{
		From: x.from, To: x.to, Data: data, TLS: isTLS, User: x.user,
	})
	return nil
}

func (x *session) Reset() { x.from, x.to = "", nil }

func (x *session) Logout() error { return nil }

// SelfSignedTLS returns a server TLS config for 127.0.0.1 and localhost and
// a pool trusting it.
func SelfSignedTLS(t *testing.T) (*tls.Config, *x509.CertPool) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "tenantry test smtp"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(time.Hour),
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		IPAddresses:           []net.IP{net.IPv4(127, 0, 0, 1)},
		DNSNames:              []string{"localhost"},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	require.NoError(t, err)
	cert, err := x509.ParseCertificate(der)
	require.NoError(t, err)
	roots := x509.NewCertPool()
	roots.AddCert(cert)
	return &tls.Config{
		Certificates: []tls.Certificate{{Certificate: [][]byte{der}, PrivateKey: key}},
		MinVersion:   tls.VersionTLS12,
	}, roots
}
