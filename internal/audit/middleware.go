package audit

import (
	"context"
	"net"
	"net/http"
	"strings"
)

// Middleware records the client's address (the connection's peer) and user
// agent in each request's context, for the entries recorded while serving
// it. It ignores X-Forwarded-For, which any client can send; behind a reverse
// proxy use MiddlewareWith(true).
func Middleware(next http.Handler) http.Handler { return MiddlewareWith(false)(next) }

// MiddlewareWith returns the client middleware. With trustProxy set, the
// client address is the last address in X-Forwarded-For: the one the
// (single, trusted) reverse proxy appended. Addresses before it were sent by
// the client and prove nothing. Set it only when every request arrives
// through that proxy.
func MiddlewareWith(trustProxy bool) func(http.Handler) http.Handler {
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			ctx := WithClient(r.Context(), clientAddr(r, trustProxy), r.UserAgent())
			next.ServeHTTP(w, r.WithContext(ctx))
		})
	}
}

// ClientAddr is the client's IP address (without the port) that the
// middleware stored in ctx, or "" outside it. Other modules read it rather
// than parse X-Forwarded-For again, so one setting decides whom to trust.
func ClientAddr(ctx context.Context) string { return clientOf(ctx).addr }

func clientAddr(r *http.Request, trustProxy bool) string {
	if trustProxy {
		if xff := r.Header.Values("X-Forwarded-For"); len(xff) > 0 {
			hops := strings.Split(xff[len(xff)-1], ",")
			if last := strings.TrimSpace(hops[len(hops)-1]); last != "" {
				return last
			}
		}
	}
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}
