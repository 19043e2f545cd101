//go:build !linux

package loadgen

// machineCPU is only known on Linux.
func machineCPU() (float64, bool) { return 0, false }
