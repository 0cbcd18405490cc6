package benchkit

import (
	"fmt"
	"os"
	"runtime"
	"strings"
	"time"
)

// DateLine is the header line that dates a run and says how long it took.
func DateLine(start, ended time.Time) string {
	return fmt.Sprintf("Date: %s (UTC), run took %s", start.UTC().Format("2006-01-02 15:04"), ended.Sub(start).Round(time.Second))
}

// MachineLine is the header line that describes the machine: host, CPU,
// cores, memory, and the load average at the start (loadAtStart, from
// [LoadAverage]) and now, since the machine is shared.
func MachineLine(loadAtStart string) string {
	host, _ := os.Hostname()
	return fmt.Sprintf("Machine: %s, %s, %d cores (GOMAXPROCS %d), %s RAM, load average %s at start and %s at end",
		host, cpuModel(), runtime.NumCPU(), runtime.GOMAXPROCS(0), memTotal(), loadAtStart, LoadAverage())
}

// LoadAverage returns the 1, 5 and 15 minute load averages.
func LoadAverage() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "unknown"
	}
	if f := strings.Fields(string(b)); len(f) >= 3 {
		return strings.Join(f[:3], " ")
	}
	return "unknown"
}

// cpuModel returns the first CPU's model name from /proc/cpuinfo.
func cpuModel() string {
	b, err := os.ReadFile("/proc/cpuinfo")
	if err != nil {
		return "unknown CPU"
	}
	for line := range strings.Lines(string(b)) {
		if key, val, ok := strings.Cut(line, ":"); ok && strings.TrimSpace(key) == "model name" {
			return strings.TrimSpace(val)
		}
	}
	return "unknown CPU"
}

// memTotal returns MemTotal from /proc/meminfo in GiB.
func memTotal() string {
	b, err := os.ReadFile("/proc/meminfo")
	if err != nil {
		return "unknown"
	}
	var kib uint64
	for line := range strings.Lines(string(b)) {
		if _, err := fmt.Sscanf(line, "MemTotal: %d kB", &kib); err == nil {
			return fmt.Sprintf("%.1f GiB", float64(kib)/(1<<20))
		}
	}
	return "unknown"
}
