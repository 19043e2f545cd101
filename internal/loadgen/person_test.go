package loadgen

import (
	"math/rand/v2"
	"regexp"
	"testing"
	"time"

	"github.com/shaobing/shaobing/internal/people"
)

func TestResidentIDsAreValidAndDistinct(t *testing.T) {
	today := time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)
	seen := make(map[string]int64)
	check := func(seq int64) {
		t.Helper()
		id := ResidentID("330305", seq)
		r, err := people.ParseResidentID(id, today)
		if err != nil {
			t.Fatalf("ResidentID(%d) = %s: %v", seq, id, err)
		}
		if r.Number != id || r.RegionCode != "330305" {
			t.Fatalf("ResidentID(%d) = %s, parsed as %+v", seq, id, r)
		}
		if other, dup := seen[id]; dup {
			t.Fatalf("ResidentID(%d) = ResidentID(%d) = %s", seq, other, id)
		}
		seen[id] = seq
	}
	for seq := range int64(120_000) {
		check(seq)
	}
	for seq := int64(PersonSpace - 5000); seq < PersonSpace; seq++ {
		check(seq)
	}
	if last := ResidentID("330305", PersonSpace-1); last[6:14] != "20051231" {
		t.Errorf("the last person is born %s, want 20051231", last[6:14])
	}
	if ResidentID("330305", PersonSpace) != ResidentID("330305", 0) {
		t.Error("sequence numbers do not wrap at PersonSpace")
	}
}

func TestResidentIDCheckCharacter(t *testing.T) {
	// A real-format example: GB 11643's worked example 11010519491231002X.
	tests := []struct {
		first17 string
		want    byte
	}{
		{"11010519491231002", 'X'},
		{"44052418800101001", '4'},
	}
	for _, tt := range tests {
		if got := people.CheckChar(tt.first17); got != tt.want {
			t.Errorf("CheckChar(%s) = %c, want %c", tt.first17, got, tt.want)
		}
	}
	// ResidentID puts the check character last: changing it breaks validity.
	id := ResidentID("110105", 2_000_000)
	if people.CheckChar(id[:17]) != id[17] {
		t.Errorf("%s: the check character is not MOD 11-2", id)
	}
}

func TestPhonesAndNames(t *testing.T) {
	seen := make(map[string]bool)
	for seq := range int64(20_000) {
		p := Phone(seq)
		norm, err := people.NormalizePhone(p)
		if err != nil || norm != p {
			t.Fatalf("Phone(%d) = %q: %v", seq, p, err)
		}
		if seen[p] {
			t.Fatalf("Phone(%d) = %s repeats", seq, p)
		}
		seen[p] = true
		if PersonName(seq) == "" {
			t.Fatalf("PersonName(%d) is empty", seq)
		}
	}
}

func TestClientIDs(t *testing.T) {
	v4 := regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$`)
	v7 := regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$`)
	r := rand.New(rand.NewPCG(1, 2))
	seen := make(map[string]bool)
	at := time.Date(2026, 11, 23, 8, 0, 0, 0, time.UTC)
	prev := ""
	for i := range 10_000 {
		random, ordered := ClientID(r, time.Time{}), ClientID(r, at.Add(time.Duration(i)*time.Millisecond))
		if !v4.MatchString(random) {
			t.Fatalf("ClientID %q is not a version-4 UUID", random)
		}
		if !v7.MatchString(ordered) {
			t.Fatalf("ClientID %q is not a version-7 UUID", ordered)
		}
		if ordered <= prev {
			t.Fatalf("version-7 ClientID %q made later sorts before %q", ordered, prev)
		}
		prev = ordered
		for _, id := range []string{random, ordered} {
			if seen[id] {
				t.Fatalf("ClientID %s repeats", id)
			}
			seen[id] = true
		}
	}
	// The time comes first, in milliseconds: 2026-11-23T08:00:00Z.
	if id := ClientID(r, at); id[:13] != "01a2076b-4400" {
		t.Errorf("ClientID at %v = %s, want it to start 01a2076b-4400", at, id)
	}
}

func TestTubeCodesAreBarcodes(t *testing.T) {
	plain := regexp.MustCompile(`^[A-Z0-9-]{1,40}$`)
	for _, code := range []string{TubeCode(NewRunID(), 0, 1), TubeCode(NewRunID(), 9999, 999_999)} {
		if !plain.MatchString(code) {
			t.Errorf("tube code %q: want at most 40 upper-case letters, digits and -", code)
		}
	}
	if TubeCode("LTX", 1, 2) == TubeCode("LTX", 12, 0) {
		t.Error("tube codes of different clients meet")
	}
}
