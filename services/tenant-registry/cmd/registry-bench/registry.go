package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
)

const (
	// servingTimeout bounds the wait for a started registry to report
	// SERVING; loading 100,000 tenants is part of its start-up.
	servingTimeout = 3 * time.Minute
	// stopTimeout is how long a registry may take to shut down gracefully
	// after SIGTERM before it is killed. Its own shutdown timeout is 15 s.
	stopTimeout = 30 * time.Second
)

// tokens are the bearer tokens the registry is started with: random per
// run, never printed.
type tokens struct {
	operator string
	service  string
}

// registryProcess is a tenant-registry binary running as a child process.
type registryProcess struct {
	cmd     *exec.Cmd
	addr    string
	started time.Time
	exited  chan struct{}
	waitErr error // set before exited is closed

	stopOnce sync.Once
	stopErr  error
}

// startRegistry runs the registry binary on databaseURL, listening on a
// free loopback port, and returns once its health service reports SERVING.
// Its output goes to logs, each line prefixed with name.
func startRegistry(ctx context.Context, bin, databaseURL string, tok tokens, name string, logs io.Writer) (*registryProcess, error) {
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
	cmd := exec.Command(bin,
		"-grpc-addr", addr,
		"-database-url", databaseURL,
		"-operator-token", tok.operator,
		"-service-token", tok.service,
		"-log-level", "warn",
	)
	cmd.Env = registryEnv()
	out := &prefixWriter{prefix: name + ": ", w: logs}
	cmd.Stdout, cmd.Stderr = out, out
	cmd.SysProcAttr = &syscall.SysProcAttr{
		// Its own process group keeps a Ctrl-C on the terminal from reaching
		// it before we are ready to stop it in order.
		Setpgid: true,
		// If this process dies without stopping it (SIGKILL, a crash), the
		// kernel tells the registry to shut down.
		Pdeathsig: syscall.SIGTERM,
	}
	p := &registryProcess{cmd: cmd, addr: addr, exited: make(chan struct{})}
	p.started = time.Now()
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s: %w", bin, err)
	}
	go func() {
		p.waitErr = cmd.Wait()
		out.flush()
		close(p.exited)
	}()
	if err := p.waitServing(ctx); err != nil {
		return nil, errors.Join(err, p.stop())
	}
	return p, nil
}

// registryEnv is this process's environment without the registry's own
// settings, so that a TENANTRY_* variable in the caller's shell cannot
// change what is measured; the flags say everything.
func registryEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		name, _, _ := strings.Cut(kv, "=")
		if strings.HasPrefix(name, "TENANTRY_") || name == "DATABASE_URL" {
			continue
		}
		env = append(env, kv)
	}
	return env
}

// waitServing polls grpc.health.v1 until the registry says SERVING.
func (p *registryProcess) waitServing(ctx context.Context) error {
	conn, err := grpc.NewClient(p.addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		return fmt.Errorf("connect to the registry: %w", err)
	}
	defer conn.Close()
	health := healthpb.NewHealthClient(conn)
	ctx, cancel := context.WithTimeout(ctx, servingTimeout)
	defer cancel()
	tick := time.NewTicker(50 * time.Millisecond)
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
			return fmt.Errorf("the registry exited before serving: %v (its output is above)", p.waitErr)
		case <-ctx.Done():
			return fmt.Errorf("the registry did not report SERVING within %s: %w", servingTimeout, context.Cause(ctx))
		case <-tick.C:
		}
	}
}

// stop shuts the registry down gracefully with SIGTERM, killing it if it
// takes longer than stopTimeout. It is idempotent.
func (p *registryProcess) stop() error {
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
				p.stopErr = fmt.Errorf("the registry did not stop within %s of SIGTERM and was killed", stopTimeout)
				return
			}
		}
		var exitErr *exec.ExitError
		if errors.As(p.waitErr, &exitErr) {
			p.stopErr = fmt.Errorf("the registry exited with %v", p.waitErr)
		}
	})
	return p.stopErr
}

// running reports an error if the registry has exited.
func (p *registryProcess) running() error {
	select {
	case <-p.exited:
		return fmt.Errorf("the registry exited unexpectedly: %v (its output is above)", p.waitErr)
	default:
		return nil
	}
}

// userHZ is the unit of the CPU times in /proc/<pid>/stat: USER_HZ, which
// Linux fixes at 100 for user space on every common architecture.
const userHZ = 100

// cpuTime returns the CPU time, user and system, the registry has used.
func (p *registryProcess) cpuTime() (time.Duration, error) {
	if err := p.running(); err != nil {
		return 0, err
	}
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", p.cmd.Process.Pid))
	if err != nil {
		return 0, fmt.Errorf("read the registry's CPU time: %w", err)
	}
	return parseProcStat(b)
}

// parseProcStat extracts utime + stime from the text of /proc/<pid>/stat.
// The command name in parentheses may hold spaces, so fields are counted
// from the last closing parenthesis: utime and stime are fields 14 and 15.
func parseProcStat(b []byte) (time.Duration, error) {
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return 0, errors.New("unexpected /proc stat format")
	}
	fields := strings.Fields(string(b[i+1:]))
	const utime, stime = 14 - 3, 15 - 3 // the first field after ")" is field 3
	if len(fields) <= stime {
		return 0, errors.New("unexpected /proc stat format: too few fields")
	}
	var ticks uint64
	for _, f := range []string{fields[utime], fields[stime]} {
		n, err := strconv.ParseUint(f, 10, 64)
		if err != nil {
			return 0, fmt.Errorf("parse /proc stat CPU time: %w", err)
		}
		ticks += n
	}
	return time.Duration(ticks) * time.Second / userHZ, nil
}

// memory is a process's resident set size now and at its peak.
type memory struct {
	rss, peak uint64 // bytes
}

// memory reads VmRSS and VmHWM from /proc/<pid>/status.
func (p *registryProcess) memory() (memory, error) {
	if err := p.running(); err != nil {
		return memory{}, err
	}
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", p.cmd.Process.Pid))
	if err != nil {
		return memory{}, fmt.Errorf("read the registry's memory: %w", err)
	}
	return parseProcStatus(b)
}

// parseProcStatus extracts VmRSS and VmHWM, which the kernel gives in kB
// (KiB), from the text of /proc/<pid>/status.
func parseProcStatus(b []byte) (memory, error) {
	var m memory
	var found int
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		key, val, ok := strings.Cut(sc.Text(), ":")
		if !ok || (key != "VmRSS" && key != "VmHWM") {
			continue
		}
		fields := strings.Fields(val)
		if len(fields) != 2 || fields[1] != "kB" {
			return memory{}, fmt.Errorf("unexpected %s line in /proc status: %q", key, sc.Text())
		}
		kib, err := strconv.ParseUint(fields[0], 10, 64)
		if err != nil {
			return memory{}, fmt.Errorf("parse %s: %w", key, err)
		}
		if key == "VmRSS" {
			m.rss = kib << 10
		} else {
			m.peak = kib << 10
		}
		found++
	}
	if found != 2 {
		return memory{}, errors.New("VmRSS or VmHWM missing from /proc status")
	}
	return m, nil
}

// freePort asks the kernel for a loopback TCP port that is free right now.
func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("find a free port: %w", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// prefixWriter writes each complete line with a prefix, so the registry's
// logs are told apart from ours on stderr.
type prefixWriter struct {
	prefix string
	w      io.Writer
	mu     sync.Mutex
	buf    []byte
}

func (pw *prefixWriter) Write(b []byte) (int, error) {
	pw.mu.Lock()
	defer pw.mu.Unlock()
	pw.buf = append(pw.buf, b...)
	for {
		i := bytes.IndexByte(pw.buf, '\n')
		if i < 0 {
			return len(b), nil
		}
		if _, err := fmt.Fprintf(pw.w, "%s%s\n", pw.prefix, pw.buf[:i]); err != nil {
			return len(b), err
		}
		pw.buf = pw.buf[i+1:]
	}
}

// flush writes a last line that had no newline.
func (pw *prefixWriter) flush() {
	pw.mu.Lock()
	defer pw.mu.Unlock()
	if len(pw.buf) > 0 {
		fmt.Fprintf(pw.w, "%s%s\n", pw.prefix, pw.buf)
		pw.buf = nil
	}
}
