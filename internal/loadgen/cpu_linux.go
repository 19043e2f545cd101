//go:build linux

package loadgen

import (
	"bufio"
	"os"
	"strconv"
	"strings"
)

// machineCPU returns the CPU time every process of the machine has used
// (all but idle and I/O wait), from /proc/stat.
func machineCPU() (float64, bool) {
	f, err := os.Open("/proc/stat")
	if err != nil {
		return 0, false
	}
	defer f.Close()
	line, err := bufio.NewReader(f).ReadString('\n')
	if err != nil {
		return 0, false
	}
	return parseProcStat(line)
}

// parseProcStat reads the busy time from /proc/stat's first line: "cpu"
// then user, nice, system, idle, iowait, irq, softirq and steal in clock
// ticks (USER_HZ, 100 a second on every Linux this runs on).
func parseProcStat(line string) (float64, bool) {
	fields := strings.Fields(line)
	if len(fields) < 9 || fields[0] != "cpu" {
		return 0, false
	}
	var busy float64
	for i, f := range fields[1:9] {
		v, err := strconv.ParseFloat(f, 64)
		if err != nil {
			return 0, false
		}
		if i != 3 && i != 4 { // idle and iowait
			busy += v
		}
	}
	return busy / 100, true
}
