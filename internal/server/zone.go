package server

import (
	"context"
	"log/slog"
	"net/http"
	"sync"
	"time"

	"github.com/shaobing/shaobing/internal/settings"
	"github.com/shaobing/shaobing/internal/web"
)

// zoneTTL is how long the bureau's time zone is kept between reads of the
// settings: a change made on another instance shows within it.
const zoneTTL = 10 * time.Second

// zoneCache gives the shell the bureau's time zone (the bureau.timezone
// setting) without a database read on every page.
type zoneCache struct {
	store    *settings.Store
	now      func() time.Time
	log      *slog.Logger
	fallback *time.Location // until the settings answer

	mu      sync.Mutex
	loc     *time.Location
	expires time.Time
}

// Location returns the cached zone, reading the setting again once it is
// older than zoneTTL; one request reads while the others wait for it. If the
// read fails it keeps the last zone it had (or the fallback) for another
// zoneTTL, so a struggling database is not asked again, and the failure not
// logged again, on every page.
func (z *zoneCache) Location(ctx context.Context) *time.Location {
	z.mu.Lock()
	defer z.mu.Unlock()
	now := z.now()
	if z.loc != nil && now.Before(z.expires) {
		return z.loc
	}
	loc, err := z.store.Location(ctx)
	if err != nil {
		z.log.WarnContext(ctx, "read bureau time zone", "err", err, "request_id", web.RequestID(ctx))
		if z.loc == nil {
			z.loc = z.fallback
		}
		z.expires = now.Add(zoneTTL)
		return z.loc
	}
	z.loc, z.expires = loc, now.Add(zoneTTL)
	return loc
}

// forget drops the cached zone, so a change made on this instance shows on
// the next page.
func (z *zoneCache) forget() {
	z.mu.Lock()
	z.loc = nil
	z.mu.Unlock()
}

// forgetting wraps the settings form so the time zone is read afresh after it.
func (z *zoneCache) forgetting(fn web.HandlerFunc) web.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) error {
		defer z.forget()
		return fn(w, r)
	}
}
