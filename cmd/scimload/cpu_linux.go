package main

import (
	"bytes"
	"fmt"
	"os"
	"strconv"
	"syscall"
	"time"
)

// processCPU returns the CPU time, user and system, that this process has used so far.
func processCPU() (time.Duration, bool) {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0, false
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano()), true
}

// userHZ is the unit of the times in /proc/PID/stat, fixed for user space on Linux.
const userHZ = 100

// serverCPU returns the CPU time, user and system, that process pid has used so far, from
// /proc/PID/stat (to a hundredth of a second: phases last seconds).
func serverCPU(pid int) (time.Duration, bool) {
	raw, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, false
	}
	return parseProcStatCPU(raw)
}

// parseProcStatCPU reads utime and stime, the 14th and 15th fields of a /proc/PID/stat line.
// The second field, the command name in parentheses, may itself hold spaces and parentheses:
// the fields are counted from the last ')'.
func parseProcStatCPU(raw []byte) (time.Duration, bool) {
	i := bytes.LastIndexByte(raw, ')')
	if i < 0 {
		return 0, false
	}
	fields := bytes.Fields(raw[i+1:]) // from the 3rd field, state
	if len(fields) < 13 {
		return 0, false
	}
	var ticks int64
	for _, f := range fields[11:13] {
		n, err := strconv.ParseInt(string(f), 10, 64)
		if err != nil {
			return 0, false
		}
		ticks += n
	}
	return time.Duration(ticks) * time.Second / userHZ, true
}
