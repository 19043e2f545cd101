//go:build !unix

package loadgen

// selfCPU is not known outside Unix.
func selfCPU() (float64, bool) { return 0, false }
