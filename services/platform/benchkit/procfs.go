package benchkit

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// userHZ is the unit of the CPU times in /proc/<pid>/stat: USER_HZ, which
// Linux fixes at 100 for user space on every common architecture.
const userHZ = 100

// Memory is a process's resident set size now and at its peak.
type Memory struct {
	RSS  uint64 // bytes: VmRSS
	Peak uint64 // bytes: VmHWM
}

// SelfCPUTime returns the CPU time, user and system, this process has
// used: the cost of a baseline measured in process. It is a [CPUMeter].
func SelfCPUTime() (time.Duration, error) {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0, fmt.Errorf("getrusage: %w", err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano()), nil
}

// PostgresCPU returns a meter of the CPU time used by a PostgreSQL
// cluster: the postmaster named in dataDir/postmaster.pid and its children
// (backends, WAL writer, checkpointer…). It adds up each process's growth
// between reads, so a process that exits takes with it only what it used
// since the last read, never what it had used before.
func PostgresCPU(dataDir string) CPUMeter {
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

// parseProcStat extracts utime + stime from the text of /proc/<pid>/stat.
func parseProcStat(b []byte) (time.Duration, error) {
	_, cpu, err := parseProcStatFields(b)
	return cpu, err
}

// parseProcStatFields extracts the parent pid (field 4) and utime + stime
// (fields 14 and 15) from the text of /proc/<pid>/stat. The command name in
// parentheses may hold spaces, so fields are counted from the last closing
// parenthesis.
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

// parseProcStatus extracts VmRSS and VmHWM, which the kernel gives in kB
// (KiB), from the text of /proc/<pid>/status.
func parseProcStatus(b []byte) (Memory, error) {
	var m Memory
	var found int
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		key, val, ok := strings.Cut(sc.Text(), ":")
		if !ok || (key != "VmRSS" && key != "VmHWM") {
			continue
		}
		fields := strings.Fields(val)
		if len(fields) != 2 || fields[1] != "kB" {
			return Memory{}, fmt.Errorf("unexpected %s line in /proc status: %q", key, sc.Text())
		}
		kib, err := strconv.ParseUint(fields[0], 10, 64)
		if err != nil {
			return Memory{}, fmt.Errorf("parse %s: %w", key, err)
		}
		if key == "VmRSS" {
			m.RSS = kib << 10
		} else {
			m.Peak = kib << 10
		}
		found++
	}
	if found != 2 {
		return Memory{}, errors.New("VmRSS or VmHWM missing from /proc status")
	}
	return m, nil
}
