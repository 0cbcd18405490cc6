package pgcluster

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"syscall"
)

// watchdogScript waits for end of file on its standard input, which happens
// only when the process holding the other end of the pipe exits, however it
// exits, and then shuts the server down at once. Arguments: pg_ctl, data dir.
const watchdogScript = `read -r _; exec "$1" stop -D "$2" -m immediate -w >/dev/null 2>&1`

// watchdog is a small shell process that stops the server when this process
// exits without stopping it: a crash, a test binary's -timeout panic, a
// SIGKILL. pg_ctl runs the server in its own session, so nothing else would.
type watchdog struct {
	cmd  *exec.Cmd
	pipe *os.File // write end of the watchdog's stdin; never written, only held
}

// startWatchdog starts a watchdog for the cluster.
func (c *Cluster) startWatchdog() (*watchdog, error) {
	r, w, err := os.Pipe() // close-on-exec: no other child inherits the write end
	if err != nil {
		return nil, fmt.Errorf("create watchdog pipe: %w", err)
	}
	defer r.Close()
	cmd := exec.Command("/bin/sh", "-c", watchdogScript, "pgcluster-watchdog", c.bin("pg_ctl"), c.dataDir)
	cmd.Stdin = r
	c.user.configure(cmd)
	// Its own process group keeps a Ctrl-C on the terminal from killing the
	// watchdog before it has done its job.
	cmd.SysProcAttr.Setpgid = true
	if err := cmd.Start(); err != nil {
		return nil, errors.Join(fmt.Errorf("start watchdog: %w", err), w.Close())
	}
	return &watchdog{cmd: cmd, pipe: w}, nil
}

// dismiss ends the watchdog without letting it stop the server, so that a
// later Start is not shut down by an old watchdog.
func (w *watchdog) dismiss() error {
	if w == nil {
		return nil
	}
	// Kill before closing the pipe: closing first would wake it up.
	killErr := w.cmd.Process.Signal(syscall.SIGKILL)
	_ = w.cmd.Wait() // "signal: killed" is the expected outcome
	closeErr := w.pipe.Close()
	if killErr != nil && !errors.Is(killErr, os.ErrProcessDone) {
		return fmt.Errorf("dismiss watchdog: %w", killErr)
	}
	if closeErr != nil {
		return fmt.Errorf("dismiss watchdog: %w", closeErr)
	}
	return nil
}
