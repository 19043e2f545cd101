package auth

import (
	"context"
	"strings"
	"testing"

	"github.com/shaobing/shaobing/internal/apperr"
)

func TestHashPassword(t *testing.T) {
	h := HashPassword("correct horse battery", fastHash)
	if !strings.HasPrefix(h, "$argon2id$v=19$m=64,t=1,p=1$") {
		t.Fatalf("hash %q is not a PHC argon2id string with its parameters", h)
	}
	if h2 := HashPassword("correct horse battery", fastHash); h2 == h {
		t.Error("two hashes of one password are equal: the salt is not random")
	}
	tests := []struct {
		password string
		want     bool
	}{
		{"correct horse battery", true},
		{"correct horse batterY", false},
		{"", false},
		{"correct horse battery ", false},
	}
	for _, tt := range tests {
		ok, err := VerifyPassword(tt.password, h)
		if err != nil || ok != tt.want {
			t.Errorf("VerifyPassword(%q) = %v, %v; want %v", tt.password, ok, err, tt.want)
		}
	}
	// The parameters are read from the hash, so hashes made under other
	// parameters still verify.
	if ok, err := VerifyPassword("x", HashPassword("x", HashParams{Memory: 128, Time: 2, Threads: 2})); !ok || err != nil {
		t.Errorf("hash under other parameters: %v, %v", ok, err)
	}
}

func TestVerifyPasswordMalformed(t *testing.T) {
	good := HashPassword("pw", fastHash)
	parts := strings.Split(good, "$")
	for _, bad := range []string{
		"",
		"plain",
		strings.Replace(good, "argon2id", "argon2i", 1),
		strings.Replace(good, "v=19", "v=16", 1),
		strings.Replace(good, "m=64", "m=99999999", 1), // absurd memory
		strings.Replace(good, "t=1", "t=0", 1),
		"$argon2id$v=19$m=64,t=1,p=1$!!!$" + parts[5],
		"$argon2id$v=19$m=64,t=1,p=1$" + parts[4] + "$",
	} {
		if ok, err := VerifyPassword("pw", bad); ok || err == nil {
			t.Errorf("VerifyPassword(_, %q) = %v, %v; want an error", bad, ok, err)
		}
	}
}

func TestCheckPassword(t *testing.T) {
	tests := []struct {
		password, username, want string
	}{
		{"", "alice", "required"},
		{"short", "alice", "password.too_short"},
		{"elevenchars", "alice", "password.too_short"},
		{"twelve chars", "alice", ""},
		{"十二个汉字组成的一个很长密码", "alice", ""}, // characters, not bytes
		{"六个汉字密码", "alice", "password.too_short"},
		{"alice.zhang.2024", "alice.zhang.2024", "password.same_as_username"},
		{"ALICE.ZHANG.2024", "alice.zhang.2024", "password.same_as_username"},
		{strings.Repeat("x", 257), "alice", "password.too_long"},
	}
	for _, tt := range tests {
		var p apperr.Problems
		checkPassword(&p, "password", tt.password, tt.username)
		got := ""
		if len(p) > 0 {
			got = p[0].Code
		}
		if got != tt.want {
			t.Errorf("checkPassword(%q, %q) = %q; want %q", tt.password, tt.username, got, tt.want)
		}
	}
}

func TestHasherDummy(t *testing.T) {
	h := newHasher(fastHash, 1)
	first := h.dummy()
	if _, _, _, err := parseHash(first); err != nil {
		t.Fatalf("dummy hash %q: %v", first, err)
	}
	if again := h.dummy(); again != first {
		t.Errorf("dummy hash changed between uses: %q then %q", first, again)
	}
	if other := newHasher(fastHash, 1).dummy(); other == first {
		t.Error("two hashers share a dummy hash")
	}
	// An unknown user (no stored hash) never verifies.
	if ok, err := h.verify(context.Background(), first, ""); ok || err != nil {
		t.Errorf("verify against no hash = %v, %v; want false, nil", ok, err)
	}
}
