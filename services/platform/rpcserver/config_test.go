package rpcserver_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"flag"
	"maps"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"

	"tenantry.dev/platform/rpcserver"
)

// writeCert writes a self-signed certificate for 127.0.0.1 and its key to
// a temporary directory and returns their paths and the certificate.
func writeCert(t *testing.T) (certFile, keyFile string, cert *x509.Certificate) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "rpcserver test"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(time.Hour),
		IPAddresses:           []net.IP{net.IPv4(127, 0, 0, 1)},
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	require.NoError(t, err)
	cert, err = x509.ParseCertificate(der)
	require.NoError(t, err)
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	require.NoError(t, err)

	dir := t.TempDir()
	certFile = filepath.Join(dir, "cert.pem")
	keyFile = filepath.Join(dir, "key.pem")
	require.NoError(t, os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600))
	require.NoError(t, os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER}), 0o600))
	return certFile, keyFile, cert
}

func TestNewValidatesConfig(t *testing.T) {
	t.Parallel()
	certFile, keyFile, _ := writeCert(t)
	guard := newGuard(t)

	cases := []struct {
		name string
		cfg  rpcserver.Config
		want []string // substrings of the error; none means New succeeds
	}{
		{name: "plaintext on 127.0.0.1 is fine", cfg: rpcserver.Config{Addr: "127.0.0.1:0", Auth: guard}},
		{name: "plaintext on another 127/8 address is fine", cfg: rpcserver.Config{Addr: "127.1.2.3:8080", Auth: guard}},
		{name: "plaintext on ::1 is fine", cfg: rpcserver.Config{Addr: "[::1]:8080", Auth: guard}},
		{name: "plaintext on localhost is fine", cfg: rpcserver.Config{Addr: "localhost:8080", Auth: guard}},
		{name: "plaintext anywhere with AllowInsecure is fine", cfg: rpcserver.Config{Addr: ":8080", AllowInsecure: true, Auth: guard}},
		{name: "TLS on every interface is fine", cfg: rpcserver.Config{Addr: ":8443", TLSCertFile: certFile, TLSKeyFile: keyFile, Auth: guard}},
		{name: "plaintext on every interface is refused", cfg: rpcserver.Config{Addr: ":8080", Auth: guard,
			EnvVars: map[string]string{rpcserver.FlagTLSCert: "TENANTRY_TLS_CERT", rpcserver.FlagAllowInsecure: "TENANTRY_ALLOW_INSECURE"}},
			want: []string{"refusing plaintext", "--tls-cert (TENANTRY_TLS_CERT)", "--tls-key", "--grpc-addr", "--allow-insecure (TENANTRY_ALLOW_INSECURE)"}},
		{name: "plaintext on 0.0.0.0 is refused", cfg: rpcserver.Config{Addr: "0.0.0.0:8080", Auth: guard},
			want: []string{"refusing plaintext"}},
		{name: "plaintext on a public address is refused", cfg: rpcserver.Config{Addr: "10.0.0.5:8080", Auth: guard},
			want: []string{"refusing plaintext"}},
		{name: "plaintext on a host name is refused", cfg: rpcserver.Config{Addr: "registry.internal:8080", Auth: guard},
			want: []string{"refusing plaintext"}},
		{name: "a certificate without a key is refused", cfg: rpcserver.Config{Addr: ":8443", TLSCertFile: certFile, Auth: guard},
			want: []string{"--tls-cert is set but --tls-key is not"}},
		{name: "a key without a certificate is refused", cfg: rpcserver.Config{Addr: ":8443", TLSKeyFile: keyFile, Auth: guard},
			want: []string{"--tls-key is set but --tls-cert is not"}},
		{name: "missing TLS files are refused", cfg: rpcserver.Config{Addr: ":8443", TLSCertFile: "/nonexistent/cert.pem", TLSKeyFile: keyFile, Auth: guard},
			want: []string{"load TLS key pair", "/nonexistent/cert.pem"}},
		{name: "no address is refused", cfg: rpcserver.Config{Auth: guard},
			want: []string{"no listen address: set --grpc-addr, e.g."}},
		{name: "messages name the variables the service reads", cfg: rpcserver.Config{Addr: ":8443", TLSCertFile: certFile, Auth: guard,
			EnvVars: map[string]string{rpcserver.FlagAddr: "TENANTRY_IDENTITY_GRPC_ADDR", rpcserver.FlagTLSCert: "TENANTRY_TLS_CERT"}},
			want: []string{"--tls-cert (TENANTRY_TLS_CERT) is set but --tls-key is not"}},
		{name: "the address names the service's own variable", cfg: rpcserver.Config{Auth: guard,
			EnvVars: map[string]string{rpcserver.FlagAddr: "TENANTRY_IDENTITY_GRPC_ADDR"}},
			want: []string{"set --grpc-addr (TENANTRY_IDENTITY_GRPC_ADDR)"}},
		{name: "an address without a port is refused", cfg: rpcserver.Config{Addr: "127.0.0.1", Auth: guard},
			want: []string{"is not host:port"}},
		{name: "no guard is refused", cfg: rpcserver.Config{Addr: "127.0.0.1:0"},
			want: []string{"Config.Auth is nil"}},
		{name: "every problem is reported at once", cfg: rpcserver.Config{Addr: ":8080", ShutdownTimeout: -time.Second},
			want: []string{"Config.Auth is nil", "--shutdown-timeout", "refusing plaintext"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			srv, err := rpcserver.New(tc.cfg)
			if len(tc.want) == 0 {
				require.NoError(t, err)
				require.NotNil(t, srv.GRPC())
				return
			}
			require.Error(t, err)
			for _, w := range tc.want {
				require.Contains(t, err.Error(), w)
			}
			for _, env := range regexp.MustCompile(`TENANTRY_[A-Z_]+`).FindAllString(err.Error(), -1) {
				require.Contains(t, slices.Collect(maps.Values(tc.cfg.EnvVars)), env,
					"the message names only variables the service reads")
			}
		})
	}
}

func TestListenReportsTheFlag(t *testing.T) {
	t.Parallel()
	h := start(t, nil)
	taken := h.srv.Addr().String()
	srv, err := rpcserver.New(rpcserver.Config{Addr: taken, Auth: newGuard(t),
		EnvVars: map[string]string{rpcserver.FlagAddr: "TENANTRY_NOTES_GRPC_ADDR"}})
	require.NoError(t, err)
	err = srv.Listen()
	require.ErrorContains(t, err, "--grpc-addr (TENANTRY_NOTES_GRPC_ADDR)")
	require.ErrorContains(t, err, taken)
}

func TestServeWithTLS(t *testing.T) {
	t.Parallel()
	certFile, keyFile, cert := writeCert(t)
	h := start(t, func(c *rpcserver.Config) {
		c.TLSCertFile = certFile
		c.TLSKeyFile = keyFile
	})
	roots := x509.NewCertPool()
	roots.AddCert(cert)

	t.Run("a TLS client is served", func(t *testing.T) {
		t.Parallel()
		conn, err := grpc.NewClient(h.srv.Addr().String(),
			grpc.WithTransportCredentials(credentials.NewTLS(&tls.Config{RootCAs: roots, MinVersion: tls.VersionTLS12})))
		require.NoError(t, err)
		defer conn.Close()
		resp, err := healthpb.NewHealthClient(conn).Check(callCtx(t, "", ""), &healthpb.HealthCheckRequest{})
		require.NoError(t, err)
		require.Equal(t, healthpb.HealthCheckResponse_SERVING, resp.GetStatus())
	})

	t.Run("a plaintext client is not", func(t *testing.T) {
		t.Parallel()
		conn, err := grpc.NewClient(h.srv.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
		require.NoError(t, err)
		defer conn.Close()
		_, err = healthpb.NewHealthClient(conn).Check(callCtx(t, "", ""), &healthpb.HealthCheckRequest{})
		require.Error(t, err)
	})
}

func TestRegisterFlags(t *testing.T) {
	t.Parallel()
	cfg := rpcserver.Config{Addr: "127.0.0.1:8080"}
	fs := flag.NewFlagSet("test", flag.ContinueOnError)
	cfg.RegisterFlags(fs)
	require.NoError(t, fs.Parse([]string{
		"--" + rpcserver.FlagTLSCert, "c.pem",
		"--" + rpcserver.FlagTLSKey, "k.pem",
		"--" + rpcserver.FlagAllowInsecure,
		"--" + rpcserver.FlagShutdownTimeout, "3s",
	}))
	require.Equal(t, "127.0.0.1:8080", cfg.Addr, "the current value is the default")
	require.Equal(t, "c.pem", cfg.TLSCertFile)
	require.Equal(t, "k.pem", cfg.TLSKeyFile)
	require.True(t, cfg.AllowInsecure)
	require.Equal(t, 3*time.Second, cfg.ShutdownTimeout)
}
