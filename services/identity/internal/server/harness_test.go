package server_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"mime"
	"mime/multipart"
	"mime/quotedprintable"
	"net/mail"
	"os"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	identityv1 "tenantry.dev/gen/tenantry/identity/v1"
	"tenantry.dev/identity/internal/config"
	"tenantry.dev/identity/internal/server"
	"tenantry.dev/identity/internal/smtptest"
	"tenantry.dev/kit/registrytest"
	"tenantry.dev/platform/pgtest"
)

var registryBin string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "identity-test-bin-*")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	registryBin, err = registrytest.Build(dir)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.RemoveAll(dir)
		os.Exit(1)
	}
	code := pgtest.Run(m)
	os.RemoveAll(dir)
	os.Exit(code)
}

const keyEncryptionKey = "key-encryption-key-for-tests-0123456789abcdef"

// system is a tenant-registry process, an SMTP server and an identity
// service running in the test, all on real sockets, sharing one database.
type system struct {
	t        *testing.T
	registry *registrytest.Registry
	smtp     *smtptest.Server
	identity *server.App
	conn     *grpc.ClientConn
	auth     identityv1.AuthServiceClient
	users    identityv1.UserServiceClient
	tokens   identityv1.TokenServiceClient
	stop     func()
	args     []string       // extra identity flags
	opts     server.Options // what launch passes to server.New
}

func startSystem(t *testing.T, tenants ...string) *system {
	t.Helper()
	return startSystemWith(t, nil, tenants...)
}

// startSystemWith is startSystem with extra identity flags.
func startSystemWith(t *testing.T, args []string, tenants ...string) *system {
	t.Helper()
	return startSystemOpts(t, args, server.Options{}, tenants...)
}

// startSystemOpts is startSystemWith with options for server.New.
func startSystemOpts(t *testing.T, args []string, opts server.Options, tenants ...string) *system {
	t.Helper()
	s := &system{t: t, registry: registrytest.Start(t, registryBin), smtp: smtptest.Start(t, smtptest.Options{}), args: args, opts: opts}
	for _, slug := range tenants {
		s.registry.Create(slug)
	}
	s.startIdentity(s.registry.DBURL)
	return s
}

func (s *system) startIdentity(databaseURL string) {
	r := s.launch(databaseURL)
	s.identity, s.conn, s.stop = r.app, r.conn, r.stop
	s.auth, s.users, s.tokens = r.auth, r.users, r.tokens
}

// replica is one identity App with its clients.
type replica struct {
	app    *server.App
	conn   *grpc.ClientConn
	auth   identityv1.AuthServiceClient
	users  identityv1.UserServiceClient
	tokens identityv1.TokenServiceClient
	stop   func()
}

// startReplica starts another identity service on the system's database,
// as a second replica behind a load balancer would be.
func (s *system) startReplica() *replica { return s.launch(s.registry.DBURL) }

func (s *system) launch(databaseURL string) *replica {
	t := s.t
	cfg, err := config.Load(append([]string{
		"-grpc-addr", "127.0.0.1:0",
		"-http-addr", "127.0.0.1:0",
		"-database-url", databaseURL,
		"-registry-addr", s.registry.Addr,
		"-operator-token", registrytest.OperatorToken,
		"-service-token", registrytest.ServiceToken,
		"-component-token", s.registry.ComponentToken("identity"),
		"-key-encryption-key", keyEncryptionKey,
		"-smtp-addr", s.smtp.Addr,
		"-smtp-starttls", "off",
		"-shutdown-timeout", "2s",
	}, s.args...), func(string) (string, bool) { return "", false })
	require.NoError(t, err)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	app, err := server.New(ctx, cfg, testLogger(t), s.opts)
	require.NoError(t, err)
	runCtx, stop := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- app.Run(runCtx) }()
	r := &replica{app: app, conn: registrytest.Dial(t, app.Addr().String())}
	r.auth = identityv1.NewAuthServiceClient(r.conn)
	r.users = identityv1.NewUserServiceClient(r.conn)
	r.tokens = identityv1.NewTokenServiceClient(r.conn)
	stopped := false
	r.stop = func() {
		if stopped {
			return
		}
		stopped = true
		stop()
		require.NoError(t, <-done)
	}
	t.Cleanup(r.stop)
	return r
}

func testLogger(t *testing.T) *slog.Logger {
	if os.Getenv("TENANTRY_TEST_LOGS") != "" {
		return slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return slog.New(slog.NewTextHandler(io.Discard, nil))
}

// in returns a context for a call in a tenant, with an optional bearer.
func in(tenant string, bearer ...string) context.Context {
	ctx := metadata.AppendToOutgoingContext(context.Background(), "x-tenant", tenant)
	if len(bearer) > 0 {
		ctx = metadata.AppendToOutgoingContext(ctx, "authorization", "Bearer "+bearer[0])
	}
	return ctx
}

func asOperator(tenant string) context.Context { return in(tenant, registrytest.OperatorToken) }

func requireCode(t *testing.T, err error, code codes.Code) *status.Status {
	t.Helper()
	require.Error(t, err)
	st, ok := status.FromError(err)
	require.True(t, ok, "not a status: %v", err)
	require.Equal(t, code, st.Code(), "message: %s", st.Message())
	return st
}

var tokenLink = regexp.MustCompile(`https?://[^\s]+\?token=([A-Za-z0-9_\-%]+)`)

// mailTo waits for a mail to addr whose subject contains subject and
// returns it with the token of the link it carries, if any.
func (s *system) mailTo(addr, subject string) (*mail.Message, string, string) {
	s.t.Helper()
	var (
		msg  *mail.Message
		body string
	)
	registrytest.Eventually(s.t, "a mail to "+addr+" about "+subject, func() bool {
		for _, m := range s.smtp.Messages() {
			parsed, err := mail.ReadMessage(strings.NewReader(string(m.Data)))
			if err != nil || !strings.Contains(strings.Join(m.To, ","), addr) {
				continue
			}
			dec := new(mime.WordDecoder)
			subj, _ := dec.DecodeHeader(parsed.Header.Get("Subject"))
			if !strings.Contains(subj, subject) {
				continue
			}
			parts, err := mailParts(parsed)
			if err != nil {
				return false
			}
			msg, body = parsed, parts["text/plain"]
			return true
		}
		return false
	})
	token := ""
	if m := tokenLink.FindStringSubmatch(body); m != nil {
		token = m[1]
	}
	return msg, body, token
}

// mailsTo counts the mails sent to addr so far.
func (s *system) mailsTo(addr string) int {
	n := 0
	for _, m := range s.smtp.Messages() {
		if strings.Contains(strings.Join(m.To, ","), addr) {
			n++
		}
	}
	return n
}

const goodPassword = "correct horse battery staple"

// signUpAndLogin creates an account in a tenant and logs it in.
func (s *system) signUpAndLogin(tenant, email string) *identityv1.LoginResponse {
	s.t.Helper()
	_, err := s.auth.SignUp(in(tenant), &identityv1.SignUpRequest{Email: email, Password: goodPassword})
	require.NoError(s.t, err)
	resp, err := s.auth.Login(in(tenant), &identityv1.LoginRequest{Email: email, Password: goodPassword})
	require.NoError(s.t, err)
	return resp
}

func requireCodeIs(err error, code codes.Code) bool { return status.Code(err) == code }

func registrytestEventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	registrytest.Eventually(t, what, cond)
}

// decodeBody returns the text of a raw mail.
func decodeBody(t *testing.T, raw []byte) string {
	t.Helper()
	parsed, err := mail.ReadMessage(strings.NewReader(string(raw)))
	require.NoError(t, err)
	parts, err := mailParts(parsed)
	require.NoError(t, err)
	return parts["text/plain"]
}

// mailParts decodes a mail's body by media type: its one text/plain part,
// or the text/plain and text/html parts of a multipart/alternative.
func mailParts(m *mail.Message) (map[string]string, error) {
	mediaType, params, err := mime.ParseMediaType(m.Header.Get("Content-Type"))
	if err != nil {
		return nil, err
	}
	decode := func(r io.Reader, encoding string) (string, error) {
		if strings.EqualFold(encoding, "quoted-printable") {
			r = quotedprintable.NewReader(r)
		}
		b, err := io.ReadAll(r)
		return string(b), err
	}
	parts := map[string]string{}
	if !strings.HasPrefix(mediaType, "multipart/") {
		body, err := decode(m.Body, m.Header.Get("Content-Transfer-Encoding"))
		parts[mediaType] = body
		return parts, err
	}
	mr := multipart.NewReader(m.Body, params["boundary"])
	for {
		p, err := mr.NextRawPart()
		if errors.Is(err, io.EOF) {
			return parts, nil
		}
		if err != nil {
			return nil, err
		}
		partType, _, err := mime.ParseMediaType(p.Header.Get("Content-Type"))
		if err != nil {
			return nil, err
		}
		if parts[partType], err = decode(p, p.Header.Get("Content-Transfer-Encoding")); err != nil {
			return nil, err
		}
	}
}

func loginRequest(email, password string) *identityv1.LoginRequest {
	return &identityv1.LoginRequest{Email: email, Password: password}
}
