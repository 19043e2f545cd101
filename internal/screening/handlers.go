package screening

import "github.com/shaobing/shaobing/internal/web"

// Handlers serves the screening pages and API.
type Handlers struct {
	shell *web.Shell
	svc   *Service
}

// NewHandlers returns the handlers.
func NewHandlers(shell *web.Shell, svc *Service) *Handlers { return &Handlers{shell: shell, svc: svc} }
