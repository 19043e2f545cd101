package settings

import (
	"net/http"

	"github.com/shaobing/shaobing/internal/scope"
	"github.com/shaobing/shaobing/internal/web"
)

// Handler serves the settings page (bureau administrators only).
type Handler struct {
	store *Store
	shell *web.Shell
}

// NewHandler returns the settings page handlers.
func NewHandler(store *Store, shell *web.Shell) *Handler {
	return &Handler{store: store, shell: shell}
}

// settingsPage is the template data of the settings page.
type settingsPage struct {
	Values []Value
}

// Page shows every setting with its value and an edit form.
func (h *Handler) Page(w http.ResponseWriter, r *http.Request) error {
	if _, err := web.UserWith(r, scope.BureauAdmin); err != nil {
		return err
	}
	vals, err := h.store.All(r.Context())
	if err != nil {
		return err
	}
	h.shell.Render(w, r, "settings", settingsPage{Values: vals})
	return nil
}

// Save applies the submitted form; bad values are shown next to their fields
// and nothing is saved until all are good.
func (h *Handler) Save(w http.ResponseWriter, r *http.Request) error {
	if _, err := web.UserWith(r, scope.BureauAdmin); err != nil {
		return err
	}
	if err := web.ParseForm(w, r, 0); err != nil {
		return err
	}
	submitted := map[string]string{}
	for _, k := range Keys {
		if vs, ok := r.PostForm[k.Name]; ok && len(vs) > 0 {
			submitted[k.Name] = vs[0]
		}
	}
	if err := h.store.SetAll(r.Context(), submitted); err != nil {
		vals, lerr := h.store.All(r.Context())
		if lerr != nil {
			return lerr
		}
		for i := range vals {
			if v, ok := submitted[vals[i].Name]; ok {
				vals[i].Value = v
			}
		}
		h.shell.RenderForm(w, r, "settings", settingsPage{Values: vals}, err)
		return nil
	}
	http.Redirect(w, r, "/settings?notice=settings.saved", http.StatusSeeOther)
	return nil
}
