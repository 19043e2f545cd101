package loadgen

import "testing"

func TestParseProcStat(t *testing.T) {
	tests := []struct {
		line string
		want float64
		ok   bool
	}{
		{"cpu  1000 50 400 90000 300 20 30 0 0 0\n", 15, true},
		{"cpu  100 0 100 5000 0 0 0 7", 2.07, true},
		{"cpu0 1000 50 400 90000 300 20 30 0 0 0", 0, false},
		{"cpu 1 2 3", 0, false},
		{"cpu  x 50 400 90000 300 20 30 0", 0, false},
	}
	for _, tt := range tests {
		got, ok := parseProcStat(tt.line)
		if ok != tt.ok || (ok && (got < tt.want-1e-9 || got > tt.want+1e-9)) {
			t.Errorf("parseProcStat(%q) = %v, %v; want %v, %v", tt.line, got, ok, tt.want, tt.ok)
		}
	}
}
