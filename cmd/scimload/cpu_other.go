//go:build !linux

package main

import "time"

// processCPU and serverCPU are measured on Linux only; elsewhere a report leaves them out.
func processCPU() (time.Duration, bool) { return 0, false }

func serverCPU(int) (time.Duration, bool) { return 0, false }
