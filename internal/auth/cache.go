package auth

import (
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/shaobing/shaobing/internal/scope"
	"github.com/shaobing/shaobing/internal/storage"
)

// maxCached bounds each credential cache. Only credentials that passed a
// database check are cached (never misses), so an attacker cannot fill it
// with guesses; past the bound an arbitrary entry makes room.
const maxCached = 10_000

// cache remembers recently checked credentials (token or session id digest
// → entry) for a short TTL, so a busy client costs one database read per
// TTL rather than one per request. Changes made through this Service drop
// the affected entries at once; changes made by another instance on the
// same database, or by another package without calling ForgetInstitution,
// are seen when the entry's TTL runs out, so within Options.CacheTTL.
// Expiry and the session timeouts are checked on every request regardless.
type cache[E any] struct {
	mu      sync.Mutex
	ttl     time.Duration
	max     int
	gen     uint64 // counts drops; see put
	entries map[string]cached[E]
}

type cached[E any] struct {
	entry E
	until time.Time
}

func newCache[E any](ttl time.Duration, max int) *cache[E] {
	return &cache[E]{ttl: ttl, max: max, entries: make(map[string]cached[E])}
}

// get returns the entry under key if it is younger than the TTL.
func (c *cache[E]) get(key string, now time.Time) (E, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.entries[key]
	if ok && !now.Before(e.until) {
		delete(c.entries, key)
		ok = false
	}
	return e.entry, ok
}

// generation is read before the database read that fills an entry.
func (c *cache[E]) generation() uint64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.gen
}

// put stores an entry read from the database at now, unless a drop ran
// since gen was read: the read may predate the change the drop stands for
// (a revocation committed while it ran), and storing it would bring the
// revoked credential back for a whole TTL.
func (c *cache[E]) put(key string, e E, gen uint64, now time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.gen != gen {
		return
	}
	if _, ok := c.entries[key]; !ok && len(c.entries) >= c.max {
		for k := range c.entries { // map order is random: evict an arbitrary entry
			delete(c.entries, k)
			break
		}
	}
	c.entries[key] = cached[E]{entry: e, until: now.Add(c.ttl)}
}

// remove removes the entry under key; call it after the change it stands
// for has committed.
func (c *cache[E]) remove(key string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.gen++
	delete(c.entries, key)
}

// drop removes the entries that match, as remove does.
func (c *cache[E]) drop(match func(E) bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.gen++
	for k, e := range c.entries {
		if match(e.entry) {
			delete(c.entries, k)
		}
	}
}

// tokenEntry is a checked API token: not revoked, its user allowed to act.
type tokenEntry struct {
	id        int64
	expires   time.Time // zero: never
	principal scope.Principal
	// lastUsed is last_used_at as this instance last read or wrote it, in
	// Unix milliseconds (0 for never); requests race to advance it so that
	// one of them, not all, writes the row.
	lastUsed atomic.Int64
}

// sessionEntry is a checked session: its user allowed to act.
type sessionEntry struct {
	id        string // the cookie's digest
	csrf      string
	expires   time.Time // the absolute timeout
	principal scope.Principal
	lastSeen  atomic.Int64 // last_seen_at in Unix milliseconds, as lastUsed above
}

// claimTouch reports whether the caller should write now as the new
// last-used time: the stored one is more than touchEvery old and no other
// request has claimed this write. On a failed write, call it back with
// release.
func claimTouch(last *atomic.Int64, now time.Time) (claimed bool, release func()) {
	old, ms := last.Load(), storage.Millis(now)
	if old != 0 && ms-old <= touchEvery.Milliseconds() {
		return false, nil
	}
	if !last.CompareAndSwap(old, ms) {
		return false, nil
	}
	return true, func() { last.CompareAndSwap(ms, old) }
}

// principalOf returns a copy of a cached principal for one request, so
// nothing a handler does to it reaches other requests; the clipped Roles
// make an append copy rather than write into the shared array.
func principalOf(p scope.Principal) *scope.Principal {
	p.Roles = slices.Clip(p.Roles)
	return &p
}

// forgetUser drops every cached token and session of a user, after a
// change to the user (roles, scope, disabled, password, sessions ended).
func (s *Service) forgetUser(userID int64) {
	s.tokens.drop(func(t *tokenEntry) bool { return t.principal.UserID == userID })
	s.sessions.drop(func(e *sessionEntry) bool { return e.principal.UserID == userID })
}

// ForgetInstitution drops the cached sessions and tokens of an
// institution's users, whose principals carry its region and need it active.
// Call it after deactivating or moving an institution; without it they see
// the change within Options.CacheTTL.
func (s *Service) ForgetInstitution(id int64) {
	s.tokens.drop(func(t *tokenEntry) bool { return t.principal.InstitutionID == id })
	s.sessions.drop(func(e *sessionEntry) bool { return e.principal.InstitutionID == id })
}
