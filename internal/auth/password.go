package auth

import (
	"context"
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"
	"sync"
	"unicode/utf8"

	"golang.org/x/crypto/argon2"

	"github.com/shaobing/shaobing/internal/apperr"
)

// Password length limits. The upper limit only stops absurd inputs from
// costing hashing time; it is far above any passphrase.
const (
	MinPasswordLen = 12
	maxPasswordLen = 256
)

// HashParams are argon2id's cost parameters. They are written into every
// hash, so raising them later leaves existing hashes verifiable.
type HashParams struct {
	Memory  uint32 // KiB
	Time    uint32 // passes
	Threads uint8
}

// DefaultHashParams follow RFC 9106's second recommended option (64 MiB,
// three passes), with the lanes cut to the two cores a bureau server has.
var DefaultHashParams = HashParams{Memory: 64 * 1024, Time: 3, Threads: 2}

const (
	saltLen = 16
	keyLen  = 32
)

// errBadHash means a stored hash cannot be read; it is a bug or corruption,
// never the user's fault.
var errBadHash = errors.New("auth: malformed password hash")

// HashPassword returns the PHC string of password under params:
// $argon2id$v=19$m=65536,t=3,p=2$<salt>$<hash>, base64 without padding.
func HashPassword(password string, params HashParams) string {
	salt := make([]byte, saltLen)
	_, _ = rand.Read(salt) // never fails (crypto/rand since Go 1.24)
	key := argon2.IDKey([]byte(password), salt, params.Time, params.Memory, params.Threads, keyLen)
	return fmt.Sprintf("$argon2id$v=%d$m=%d,t=%d,p=%d$%s$%s", argon2.Version, params.Memory, params.Time, params.Threads,
		base64.RawStdEncoding.EncodeToString(salt), base64.RawStdEncoding.EncodeToString(key))
}

// VerifyPassword reports whether password matches the PHC string encoded,
// comparing in constant time.
func VerifyPassword(password, encoded string) (bool, error) {
	params, salt, key, err := parseHash(encoded)
	if err != nil {
		return false, err
	}
	got := argon2.IDKey([]byte(password), salt, params.Time, params.Memory, params.Threads, uint32(len(key)))
	return subtle.ConstantTimeCompare(got, key) == 1, nil
}

func parseHash(encoded string) (HashParams, []byte, []byte, error) {
	var p HashParams
	parts := strings.Split(encoded, "$")
	// "", "argon2id", "v=19", "m=…,t=…,p=…", salt, hash
	if len(parts) != 6 || parts[0] != "" || parts[1] != "argon2id" {
		return p, nil, nil, errBadHash
	}
	var version int
	if _, err := fmt.Sscanf(parts[2], "v=%d", &version); err != nil || version != argon2.Version {
		return p, nil, nil, errBadHash
	}
	if _, err := fmt.Sscanf(parts[3], "m=%d,t=%d,p=%d", &p.Memory, &p.Time, &p.Threads); err != nil {
		return p, nil, nil, errBadHash
	}
	// Bounds keep a corrupted row from costing gigabytes or hours.
	if p.Threads == 0 || p.Time == 0 || p.Time > 16 || p.Memory < 8*uint32(p.Threads) || p.Memory > 1<<20 {
		return p, nil, nil, errBadHash
	}
	salt, err := base64.RawStdEncoding.DecodeString(parts[4])
	if err != nil || len(salt) < 8 {
		return p, nil, nil, errBadHash
	}
	key, err := base64.RawStdEncoding.DecodeString(parts[5])
	if err != nil || len(key) < 16 || len(key) > 64 {
		return p, nil, nil, errBadHash
	}
	return p, salt, key, nil
}

// checkPassword adds the problems of a new password to probs.
func checkPassword(probs *apperr.Problems, field, password, username string) {
	n := utf8.RuneCountInString(password)
	switch {
	case password == "":
		probs.Add(field, "required", "required")
	case n < MinPasswordLen:
		probs.Add(field, "password.too_short", "the password must have at least %v characters", MinPasswordLen)
	case n > maxPasswordLen:
		probs.Add(field, "password.too_long", "the password must have at most %v characters", maxPasswordLen)
	case username != "" && strings.EqualFold(password, username):
		probs.Add(field, "password.same_as_username", "the password must not be the username")
	}
}

// hasher runs argon2 with a bound on concurrency: each hash takes Memory
// KiB, so a burst of logins must queue rather than exhaust the server.
type hasher struct {
	params HashParams
	slots  chan struct{}
	// dummy is a hash of nothing anyone knows, verified for unknown users.
	// It is made on first use: a full argon2id hash at start-up would slow
	// every CLI command, most of which never sign anyone in.
	dummy func() string
}

func newHasher(params HashParams, concurrency int) *hasher {
	return &hasher{params: params, slots: make(chan struct{}, concurrency), dummy: sync.OnceValue(func() string {
		var b [18]byte
		_, _ = rand.Read(b[:])
		return HashPassword(base64.RawStdEncoding.EncodeToString(b[:]), params)
	})}
}

func (h *hasher) acquire(ctx context.Context) error {
	select {
	case h.slots <- struct{}{}:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("auth: waiting to hash: %w", ctx.Err())
	}
}

func (h *hasher) release() { <-h.slots }

// hash hashes a password under the service's parameters.
func (h *hasher) hash(ctx context.Context, password string) (string, error) {
	if err := h.acquire(ctx); err != nil {
		return "", err
	}
	defer h.release()
	return HashPassword(password, h.params), nil
}

// verify checks password against encoded; an empty encoded verifies the
// dummy hash so an unknown username costs the same time as a known one.
func (h *hasher) verify(ctx context.Context, password, encoded string) (bool, error) {
	if err := h.acquire(ctx); err != nil {
		return false, err
	}
	defer h.release()
	if encoded == "" {
		_, _ = VerifyPassword(password, h.dummy())
		return false, nil
	}
	return VerifyPassword(password, encoded)
}
