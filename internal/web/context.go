package web

import "context"

type csrfKey struct{}
type requestIDKey struct{}

// WithCSRFToken returns ctx carrying the session's CSRF token, for forms.
func WithCSRFToken(ctx context.Context, token string) context.Context {
	return context.WithValue(ctx, csrfKey{}, token)
}

// CSRFToken returns the CSRF token in ctx, or "".
func CSRFToken(ctx context.Context) string { s, _ := ctx.Value(csrfKey{}).(string); return s }

// WithRequestID returns ctx carrying a request ID for logs.
func WithRequestID(ctx context.Context, id string) context.Context {
	return context.WithValue(ctx, requestIDKey{}, id)
}

// RequestID returns the request ID in ctx, or "".
func RequestID(ctx context.Context) string { s, _ := ctx.Value(requestIDKey{}).(string); return s }

// routeSlot carries the matched route pattern back out to Observe: the mux
// sets Request.Pattern on a copy of the request (the middleware in between
// replace it with WithContext), so Observe cannot read it from its own.
type routeSlot struct{ pattern string }

type routeKey struct{}

// SetRoute records the route pattern that matched this request, for the
// access log and the metrics. The route table calls it for every route.
func SetRoute(ctx context.Context, pattern string) {
	if slot, ok := ctx.Value(routeKey{}).(*routeSlot); ok {
		slot.pattern = pattern
	}
}
