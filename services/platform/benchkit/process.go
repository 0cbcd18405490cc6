package benchkit

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
)

// Defaults of [ProcessOptions].
const (
	// DefaultServingTimeout bounds the wait for a started service to report
	// SERVING.
	DefaultServingTimeout = 2 * time.Minute
	// DefaultHealthPoll is how often grpc.health.v1 is asked while waiting.
	DefaultHealthPoll = 20 * time.Millisecond
	// stopTimeout is how long a service may take to shut down gracefully
	// after SIGTERM before it is killed. Tenantry services' own shutdown
	// timeout is 15 s.
	stopTimeout = 30 * time.Second
)

// ProcessOptions say how to run a service binary under test.
type ProcessOptions struct {
	// Name names the service in errors, as their subject: "identity", "the
	// registry".
	Name string
	// Bin is the binary; Args must make it serve gRPC (with
	// grpc.health.v1) on Addr, a loopback address such as [FreeAddr] gives.
	Bin  string
	Args []string
	Addr string
	// Env adds NAME=value settings to ServiceEnv, e.g. the OTEL_*
	// variables that turn a service's traces on.
	Env []string
	// OnLine receives every line the service writes to stdout or stderr,
	// without the newline, one at a time; [PrefixLines] forwards them.
	OnLine func(line string)
	// Forwarded names, in errors, what of its output OnLine shows: "its
	// output" (the default) or "its warnings".
	Forwarded string
	// ServingTimeout bounds the wait for SERVING (DefaultServingTimeout if
	// 0); HealthPoll is the interval between checks (DefaultHealthPoll).
	ServingTimeout time.Duration
	HealthPoll     time.Duration
}

// Process is a service binary running as a child process, listening on a
// loopback address.
type Process struct {
	name      string
	forwarded string
	cmd       *exec.Cmd
	addr      string
	started   time.Time
	exited    chan struct{}
	waitErr   error // set before exited is closed

	stopOnce sync.Once
	stopErr  error
}

// StartProcess runs a service binary with an environment without TENANTRY_*
// settings (see [ServiceEnv]) and returns once its health service reports
// SERVING. The service gets its own process group, so a Ctrl-C on the
// terminal reaches only this program, which stops it in order; and the
// kernel sends it SIGTERM if this program dies without stopping it.
func StartProcess(ctx context.Context, opts ProcessOptions) (*Process, error) {
	if opts.Forwarded == "" {
		opts.Forwarded = "its output"
	}
	if opts.ServingTimeout == 0 {
		opts.ServingTimeout = DefaultServingTimeout
	}
	if opts.HealthPoll == 0 {
		opts.HealthPoll = DefaultHealthPoll
	}
	cmd := exec.Command(opts.Bin, opts.Args...)
	cmd.Env = append(ServiceEnv(), opts.Env...)
	out := &lineWriter{onLine: opts.OnLine}
	cmd.Stdout, cmd.Stderr = out, out
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGTERM}
	p := &Process{name: opts.Name, forwarded: opts.Forwarded, cmd: cmd, addr: opts.Addr, exited: make(chan struct{})}
	p.started = time.Now()
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s: %w", opts.Bin, err)
	}
	go func() {
		p.waitErr = cmd.Wait()
		out.flush()
		close(p.exited)
	}()
	if err := p.waitServing(ctx, opts.ServingTimeout, opts.HealthPoll); err != nil {
		return nil, errors.Join(err, p.Stop())
	}
	return p, nil
}

// Addr is the address the service listens on.
func (p *Process) Addr() string { return p.addr }

// Started is when the binary was started.
func (p *Process) Started() time.Time { return p.started }

// Exited is closed once the service has exited.
func (p *Process) Exited() <-chan struct{} { return p.exited }

// ServiceEnv is this process's environment without the services' own
// settings, so that a TENANTRY_* or OTEL_* variable in the caller's shell
// cannot change what is measured; the flags (and ProcessOptions.Env) say
// everything.
func ServiceEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		name, _, _ := strings.Cut(kv, "=")
		if strings.HasPrefix(name, "TENANTRY_") || strings.HasPrefix(name, "OTEL_") || name == "DATABASE_URL" {
			continue
		}
		env = append(env, kv)
	}
	return env
}

// waitServing polls grpc.health.v1 until the service says SERVING.
func (p *Process) waitServing(ctx context.Context, timeout, poll time.Duration) error {
	conn, err := grpc.NewClient(p.addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		return fmt.Errorf("connect to %s: %w", p.name, err)
	}
	defer conn.Close()
	health := healthpb.NewHealthClient(conn)
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	tick := time.NewTicker(poll)
	defer tick.Stop()
	for {
		callCtx, callCancel := context.WithTimeout(ctx, time.Second)
		resp, err := health.Check(callCtx, &healthpb.HealthCheckRequest{})
		callCancel()
		if err == nil && resp.GetStatus() == healthpb.HealthCheckResponse_SERVING {
			return nil
		}
		select {
		case <-p.exited:
			return fmt.Errorf("%s exited before serving: %v (%s is above)", p.name, p.waitErr, p.forwarded)
		case <-ctx.Done():
			return fmt.Errorf("%s did not report SERVING within %s: %w", p.name, timeout, context.Cause(ctx))
		case <-tick.C:
		}
	}
}

// Stop shuts the service down gracefully with SIGTERM, killing it if it
// takes longer than 30 seconds. It is idempotent and safe on nil.
func (p *Process) Stop() error {
	if p == nil {
		return nil
	}
	p.stopOnce.Do(func() {
		select {
		case <-p.exited:
		default:
			_ = p.cmd.Process.Signal(syscall.SIGTERM)
			select {
			case <-p.exited:
			case <-time.After(stopTimeout):
				_ = p.cmd.Process.Kill()
				<-p.exited
				p.stopErr = fmt.Errorf("%s did not stop within %s of SIGTERM and was killed", p.name, stopTimeout)
				return
			}
		}
		var exitErr *exec.ExitError
		if errors.As(p.waitErr, &exitErr) {
			p.stopErr = fmt.Errorf("%s exited with %v", p.name, p.waitErr)
		}
	})
	return p.stopErr
}

// Running reports an error if the service has exited.
func (p *Process) Running() error {
	select {
	case <-p.exited:
		return fmt.Errorf("%s exited unexpectedly: %v (%s is above)", p.name, p.waitErr, p.forwarded)
	default:
		return nil
	}
}

// CPUTime returns the CPU time, user and system, the service has used.
func (p *Process) CPUTime() (time.Duration, error) {
	if err := p.Running(); err != nil {
		return 0, err
	}
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", p.cmd.Process.Pid))
	if err != nil {
		return 0, fmt.Errorf("read the CPU time of %s: %w", p.name, err)
	}
	return parseProcStat(b)
}

// Memory reads the service's resident set size from /proc.
func (p *Process) Memory() (Memory, error) {
	if err := p.Running(); err != nil {
		return Memory{}, err
	}
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", p.cmd.Process.Pid))
	if err != nil {
		return Memory{}, fmt.Errorf("read the memory of %s: %w", p.name, err)
	}
	return parseProcStatus(b)
}

// FreeAddr returns a loopback TCP address whose port is free right now.
func FreeAddr() (string, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", fmt.Errorf("find a free port: %w", err)
	}
	defer l.Close()
	return l.Addr().String(), nil
}

// PrefixLines returns a line handler for [ProcessOptions.OnLine] that
// writes each line to w with a prefix, so that the services' output is told
// apart from the bench's own.
func PrefixLines(prefix string, w io.Writer) func(string) {
	var mu sync.Mutex
	return func(line string) {
		mu.Lock()
		defer mu.Unlock()
		fmt.Fprintf(w, "%s%s\n", prefix, line)
	}
}

// lineWriter hands each complete line written to it to onLine, without
// the newline, one line at a time.
type lineWriter struct {
	onLine func(line string)
	mu     sync.Mutex
	buf    []byte
}

func (lw *lineWriter) Write(b []byte) (int, error) {
	lw.mu.Lock()
	defer lw.mu.Unlock()
	lw.buf = append(lw.buf, b...)
	for {
		i := bytes.IndexByte(lw.buf, '\n')
		if i < 0 {
			return len(b), nil
		}
		lw.onLine(string(lw.buf[:i]))
		lw.buf = lw.buf[i+1:]
	}
}

// flush hands over a last line that had no newline.
func (lw *lineWriter) flush() {
	lw.mu.Lock()
	defer lw.mu.Unlock()
	if len(lw.buf) > 0 {
		lw.onLine(string(lw.buf))
		lw.buf = nil
	}
}
