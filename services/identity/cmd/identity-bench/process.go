package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
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
	// servingTimeout bounds the wait for a started service to report
	// SERVING.
	servingTimeout = 2 * time.Minute
	// stopTimeout is how long a service may take to shut down gracefully
	// after SIGTERM before it is killed. Their own shutdown timeout is 15 s.
	stopTimeout = 30 * time.Second
)

// process is a service binary running as a child process, listening on a
// loopback address.
type process struct {
	name    string
	cmd     *exec.Cmd
	addr    string
	started time.Time
	out     *lineWriter
	exited  chan struct{}
	waitErr error // set before exited is closed

	stopOnce sync.Once
	stopErr  error
}

// startProcess runs bin with args (which must make it listen on addr)
// and an environment without TENANTRY_* settings, hands every line it
// writes to onLine, and returns once its health service reports SERVING.
func startProcess(ctx context.Context, name, bin, addr string, args []string, onLine func(line string)) (*process, error) {
	cmd := exec.Command(bin, args...)
	cmd.Env = serviceEnv()
	out := &lineWriter{onLine: onLine}
	cmd.Stdout, cmd.Stderr = out, out
	cmd.SysProcAttr = &syscall.SysProcAttr{
		// Its own process group keeps a Ctrl-C on the terminal from reaching
		// it before we are ready to stop it in order.
		Setpgid: true,
		// If this process dies without stopping it (SIGKILL, a crash), the
		// kernel tells the service to shut down.
		Pdeathsig: syscall.SIGTERM,
	}
	p := &process{name: name, cmd: cmd, addr: addr, out: out, exited: make(chan struct{})}
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

// serviceEnv is this process's environment without the services' own
// settings, so that a TENANTRY_* variable in the caller's shell cannot
// change what is measured; the flags say everything.
func serviceEnv() []string {
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

// waitServing polls grpc.health.v1 until the service says SERVING.
func (p *process) waitServing(ctx context.Context) error {
	conn, err := grpc.NewClient(p.addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		return fmt.Errorf("connect to %s: %w", p.name, err)
	}
	defer conn.Close()
	health := healthpb.NewHealthClient(conn)
	ctx, cancel := context.WithTimeout(ctx, servingTimeout)
	defer cancel()
	tick := time.NewTicker(20 * time.Millisecond)
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
			return fmt.Errorf("%s exited before serving: %v (its warnings are above)", p.name, p.waitErr)
		case <-ctx.Done():
			return fmt.Errorf("%s did not report SERVING within %s: %w", p.name, servingTimeout, context.Cause(ctx))
		case <-tick.C:
		}
	}
}

// stop shuts the service down gracefully with SIGTERM, killing it if it
// takes longer than stopTimeout. It is idempotent and safe on nil.
func (p *process) stop() error {
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

// running reports an error if the service has exited.
func (p *process) running() error {
	select {
	case <-p.exited:
		return fmt.Errorf("%s exited unexpectedly: %v (its warnings are above)", p.name, p.waitErr)
	default:
		return nil
	}
}

// cpuTime returns the CPU time, user and system, the service has used.
func (p *process) cpuTime() (time.Duration, error) {
	if err := p.running(); err != nil {
		return 0, err
	}
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", p.cmd.Process.Pid))
	if err != nil {
		return 0, fmt.Errorf("read the CPU time of %s: %w", p.name, err)
	}
	return parseProcStat(b)
}

// selfCPUTime returns the CPU time, user and system, this process has
// used: the in-process baseline's cost.
func selfCPUTime() (time.Duration, error) {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0, fmt.Errorf("getrusage: %w", err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano()), nil
}

// postgresCPU returns a meter of the CPU time used by a PostgreSQL
// cluster: the postmaster named in dataDir/postmaster.pid and its children
// (backends, WAL writer, checkpointer…). It adds up each process's growth
// between reads, so a process that exits takes with it only what it used
// since the last read, never what it had used before.
func postgresCPU(dataDir string) cpuMeter {
	var (
		mu    sync.Mutex
		last  = map[int]time.Duration{}
		total time.Duration
	)
	return func() (time.Duration, error) {
		mu.Lock()
		defer mu.Unlock()
		b, err := os.ReadFile(filepath.Join(dataDir, "postmaster.pid"))
		if err != nil {
			return 0, fmt.Errorf("read PostgreSQL's pid: %w", err)
		}
		first, _, _ := strings.Cut(string(b), "\n")
		postmaster, err := strconv.Atoi(strings.TrimSpace(first))
		if err != nil {
			return 0, fmt.Errorf("parse PostgreSQL's pid %q: %w", first, err)
		}
		entries, err := os.ReadDir("/proc")
		if err != nil {
			return 0, err
		}
		seen := map[int]time.Duration{}
		for _, e := range entries {
			pid, err := strconv.Atoi(e.Name())
			if err != nil {
				continue
			}
			stat, err := os.ReadFile(filepath.Join("/proc", e.Name(), "stat"))
			if err != nil {
				continue // it has just exited
			}
			ppid, cpu, err := parseProcStatFields(stat)
			if err != nil || (pid != postmaster && ppid != postmaster) {
				continue
			}
			seen[pid] = cpu
			if prev, ok := last[pid]; ok && cpu >= prev {
				total += cpu - prev
			} else {
				total += cpu // new since the last read (or a reused pid)
			}
		}
		last = seen
		return total, nil
	}
}

// userHZ is the unit of the CPU times in /proc/<pid>/stat: USER_HZ, which
// Linux fixes at 100 for user space on every common architecture.
const userHZ = 100

// parseProcStat extracts utime + stime from the text of /proc/<pid>/stat.
// The command name in parentheses may hold spaces, so fields are counted
// from the last closing parenthesis: utime and stime are fields 14 and 15.
func parseProcStat(b []byte) (time.Duration, error) {
	_, cpu, err := parseProcStatFields(b)
	return cpu, err
}

// parseProcStatFields extracts the parent pid (field 4) and utime + stime
// from the text of /proc/<pid>/stat.
func parseProcStatFields(b []byte) (ppid int, cpu time.Duration, err error) {
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return 0, 0, errors.New("unexpected /proc stat format")
	}
	fields := strings.Fields(string(b[i+1:]))
	const parent, utime, stime = 4 - 3, 14 - 3, 15 - 3 // the first field after ")" is field 3
	if len(fields) <= stime {
		return 0, 0, errors.New("unexpected /proc stat format: too few fields")
	}
	if ppid, err = strconv.Atoi(fields[parent]); err != nil {
		return 0, 0, fmt.Errorf("parse /proc stat parent pid: %w", err)
	}
	var ticks uint64
	for _, f := range []string{fields[utime], fields[stime]} {
		n, err := strconv.ParseUint(f, 10, 64)
		if err != nil {
			return 0, 0, fmt.Errorf("parse /proc stat CPU time: %w", err)
		}
		ticks += n
	}
	return ppid, time.Duration(ticks) * time.Second / userHZ, nil
}

// freeAddr returns a loopback TCP address whose port is free right now.
func freeAddr() (string, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", fmt.Errorf("find a free port: %w", err)
	}
	defer l.Close()
	return l.Addr().String(), nil
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
