package regions

import (
	"net/http"
	"strings"

	"github.com/shaobing/shaobing/internal/web"
)

// regionBrowsePage is the data of the region_browse page.
type regionBrowsePage struct {
	View        RegionView
	Breadcrumbs []Division
	Children    []regionRow
	// Here counts the institutions registered at the division itself.
	Here int
}

// regionRow is one child division on the browse page.
type regionRow struct {
	RegionChild
	Institutions int
	// Open is whether the child can be browsed further (it has children).
	Open bool
}

// RegionBrowse shows a division (?code=, default the user's region) with its
// children and how many institutions each holds.
func (h *Handlers) RegionBrowse(w http.ResponseWriter, r *http.Request) error {
	p, err := web.User(r)
	if err != nil {
		return err
	}
	code := strings.TrimSpace(r.URL.Query().Get("code"))
	if code == "" {
		code = p.RegionCode
	}
	view, err := h.tree.View(p, code)
	if err != nil {
		return err
	}
	counts, err := h.inst.CountByRegion(r.Context(), code)
	if err != nil {
		return err
	}
	page := regionBrowsePage{View: view, Breadcrumbs: h.tree.Ancestors(code), Here: counts[code]}
	for _, c := range view.Children {
		page.Children = append(page.Children, regionRow{RegionChild: c, Institutions: counts[c.Code], Open: len(h.tree.Children(c.Code)) > 0})
	}
	h.shell.Render(w, r, "region_browse", page)
	return nil
}

// APIRegion answers GET /api/v1/regions/{code}: the division, its path and
// the children the caller may browse.
func (h *Handlers) APIRegion(w http.ResponseWriter, r *http.Request) error {
	p, err := web.User(r)
	if err != nil {
		return err
	}
	view, err := h.tree.View(p, r.PathValue("code"))
	if err != nil {
		return err
	}
	web.WriteJSON(w, http.StatusOK, view)
	return nil
}
