package regions

import (
	"context"
	"net/http"
	"strconv"
	"strings"

	"github.com/shaobing/shaobing/internal/apperr"
	"github.com/shaobing/shaobing/internal/locale"
	"github.com/shaobing/shaobing/internal/scope"
	"github.com/shaobing/shaobing/internal/tabular"
	"github.com/shaobing/shaobing/internal/web"
)

// UserCounter counts the users of an institution, for its detail page. The
// accounts live in another module, which supplies it.
type UserCounter func(ctx context.Context, institutionID int64) (int, error)

// Handlers serves the institution and region pages and API.
type Handlers struct {
	shell *web.Shell
	inst  *Institutions
	tree  *Tree
	users UserCounter
}

// NewHandlers returns the handlers; users may be nil, and then the detail
// page shows no user count.
func NewHandlers(shell *web.Shell, inst *Institutions, users UserCounter) *Handlers {
	return &Handlers{shell: shell, inst: inst, tree: inst.tree, users: users}
}

// institutionListPage is the data of the institution_list page.
type institutionListPage struct {
	Items  []Institution
	Next   string
	Types  []InstitutionType
	Region Picker // the region_code filter
}

// filterFrom reads the list filters of a request's query. regionParam names
// the region filter: region_code on the page (the region picker's field),
// region in the API, whose parameter names are a contract.
func filterFrom(r *http.Request, regionParam string) (InstitutionFilter, error) {
	q := r.URL.Query()
	limit, err := web.Limit(q, 50, 1000)
	if err != nil {
		return InstitutionFilter{}, err
	}
	return InstitutionFilter{
		Type:   InstitutionType(strings.TrimSpace(q.Get("type"))),
		Region: q.Get(regionParam),
		Q:      q.Get("q"),
		Active: q.Get("active"),
		Cursor: q.Get("cursor"),
		Limit:  limit,
	}, nil
}

// InstitutionList shows the institutions in the user's scope, or exports
// them when ?format=csv|xlsx.
func (h *Handlers) InstitutionList(w http.ResponseWriter, r *http.Request) error {
	p, err := web.User(r)
	if err != nil {
		return err
	}
	f, err := filterFrom(r, "region_code")
	if err != nil {
		return err
	}
	if r.URL.Query().Get("format") != "" {
		return h.export(w, r, f)
	}
	items, next, err := h.inst.List(r.Context(), f)
	if err != nil {
		return err
	}
	h.shell.Render(w, r, "institution_list", institutionListPage{Items: items, Next: next, Types: InstitutionTypes(), Region: h.tree.Picker(p, f.Region)})
	return nil
}

// export writes every institution matching f, page by page, so a large
// register never sits in memory.
func (h *Handlers) export(w http.ResponseWriter, r *http.Request, f InstitutionFilter) error {
	lang := locale.FromRequest(r)
	t := func(key string) string { return h.shell.Catalog.T(lang, key) }
	cols := []tabular.Column{
		{Header: "ID", Kind: tabular.Number},
		{Header: t("institution.name")},
		{Header: t("institution.type")},
		{Header: t("institution.region_code")},
		{Header: t("institution.region")},
		{Header: t("institution.parent_id"), Kind: tabular.Number},
		{Header: t("institution.address")},
		{Header: t("institution.phone")},
		{Header: t("institution.active")},
		{Header: t("common.created_at"), Kind: tabular.Time},
	}
	f.Cursor, f.Limit = "", 1000
	return h.shell.Export(w, r, "institutions", t("institution.list_title"), cols, func(_ tabular.Format, write func([]any) error) error {
		for {
			items, next, err := h.inst.List(r.Context(), f)
			if err != nil {
				return err
			}
			for _, in := range items {
				var parent any
				if in.ParentID != 0 {
					parent = in.ParentID
				}
				active := t("common.yes")
				if !in.Active {
					active = t("common.no")
				}
				if err := write([]any{in.ID, in.Name, t("institution.type." + string(in.Type)), in.RegionCode, in.RegionPath,
					parent, in.Address, in.Phone, active, in.CreatedAt}); err != nil {
					return err
				}
			}
			if next == "" {
				return nil
			}
			f.Cursor = next
		}
	})
}

// institutionFormPage is the data of the institution_form page.
type institutionFormPage struct {
	ID      int64 // 0 for a new institution
	Input   InstitutionInput
	Types   []InstitutionType
	Parents []Institution
	// KeptParent is the institution's stored parent when it lies outside the
	// user's scope: offered by id only, unnamed, so saving keeps it.
	KeptParent int64
	Region     Picker // the region_code field
}

// formPage gathers the choices the form offers. The chosen parent is always
// among them, so a form saved unchanged never drops it: one not offered (an
// inactive one, or beyond maxParentChoices) is added when the user may see
// it, and the stored parent above their scope becomes KeptParent.
func (h *Handlers) formPage(ctx context.Context, id int64, in InstitutionInput) (institutionFormPage, error) {
	p, err := scope.FromContext(ctx)
	if err != nil {
		return institutionFormPage{}, err
	}
	page := institutionFormPage{ID: id, Input: in, Types: InstitutionTypes(), Region: h.tree.Picker(p, in.RegionCode)}
	choices, err := h.inst.ParentChoices(ctx)
	if err != nil {
		return page, err
	}
	offered := in.ParentID == 0 || in.ParentID == id
	for _, it := range choices {
		if it.ID != id {
			page.Parents = append(page.Parents, it)
		}
		offered = offered || it.ID == in.ParentID
	}
	if offered {
		return page, nil
	}
	parent, err := h.inst.Get(ctx, in.ParentID)
	switch {
	case err == nil:
		page.Parents = append(page.Parents, parent)
	case !apperr.Is(err, apperr.NotFound):
		return page, err
	case id != 0:
		// Outside the scope: kept only when it is the stored parent, so a
		// submitted stranger is not echoed back as a choice.
		stored, err := h.inst.Get(ctx, id)
		if err != nil {
			return page, err
		}
		if stored.ParentID == in.ParentID {
			page.KeptParent = in.ParentID
		}
	}
	return page, nil
}

// InstitutionNew shows the form for a new institution.
func (h *Handlers) InstitutionNew(w http.ResponseWriter, r *http.Request) error {
	p, err := web.UserWith(r, scope.BureauAdmin)
	if err != nil {
		return err
	}
	page, err := h.formPage(r.Context(), 0, InstitutionInput{RegionCode: p.RegionCode})
	if err != nil {
		return err
	}
	h.shell.Render(w, r, "institution_form", page)
	return nil
}

// inputFromForm reads a submitted institution form.
func inputFromForm(w http.ResponseWriter, r *http.Request) (InstitutionInput, error) {
	if err := web.ParseForm(w, r, 0); err != nil {
		return InstitutionInput{}, err
	}
	in := InstitutionInput{
		Name:       r.PostForm.Get("name"),
		Type:       InstitutionType(r.PostForm.Get("type")),
		RegionCode: r.PostForm.Get("region_code"),
		Address:    r.PostForm.Get("address"),
		Phone:      r.PostForm.Get("phone"),
	}
	if s := strings.TrimSpace(r.PostForm.Get("parent_id")); s != "" {
		id, err := strconv.ParseInt(s, 10, 64)
		if err != nil || id <= 0 {
			return in, apperr.Field("parent_id", "institution.parent_unknown", "no such institution")
		}
		in.ParentID = id
	}
	return in, nil
}

// InstitutionCreate saves a new institution from the form.
func (h *Handlers) InstitutionCreate(w http.ResponseWriter, r *http.Request) error {
	if _, err := web.UserWith(r, scope.BureauAdmin); err != nil {
		return err
	}
	in, err := inputFromForm(w, r)
	var created Institution
	if err == nil {
		created, err = h.inst.Create(r.Context(), in)
	}
	if err != nil {
		return h.rerender(w, r, 0, in, err)
	}
	http.Redirect(w, r, "/institutions/"+strconv.FormatInt(created.ID, 10)+"?notice=institution_saved", http.StatusSeeOther)
	return nil
}

// rerender shows the form again with the submission's errors.
func (h *Handlers) rerender(w http.ResponseWriter, r *http.Request, id int64, in InstitutionInput, err error) error {
	if !apperr.Is(err, apperr.Invalid) {
		return err
	}
	page, perr := h.formPage(r.Context(), id, in)
	if perr != nil {
		return perr
	}
	h.shell.RenderForm(w, r, "institution_form", page, err)
	return nil
}

// InstitutionEdit shows the form for changing an institution.
func (h *Handlers) InstitutionEdit(w http.ResponseWriter, r *http.Request) error {
	if _, err := web.UserWith(r, scope.BureauAdmin); err != nil {
		return err
	}
	id, err := web.PathID(r, "id")
	if err != nil {
		return err
	}
	in, err := h.inst.Get(r.Context(), id)
	if err != nil {
		return err
	}
	page, err := h.formPage(r.Context(), id, InstitutionInput{Name: in.Name, Type: in.Type, RegionCode: in.RegionCode,
		ParentID: in.ParentID, Address: in.Address, Phone: in.Phone})
	if err != nil {
		return err
	}
	h.shell.Render(w, r, "institution_form", page)
	return nil
}

// InstitutionUpdate saves the edit form.
func (h *Handlers) InstitutionUpdate(w http.ResponseWriter, r *http.Request) error {
	if _, err := web.UserWith(r, scope.BureauAdmin); err != nil {
		return err
	}
	id, err := web.PathID(r, "id")
	if err != nil {
		return err
	}
	in, err := inputFromForm(w, r)
	if err == nil {
		_, err = h.inst.Update(r.Context(), id, in)
	}
	if err != nil {
		return h.rerender(w, r, id, in, err)
	}
	http.Redirect(w, r, "/institutions/"+strconv.FormatInt(id, 10)+"?notice=institution_saved", http.StatusSeeOther)
	return nil
}

// InstitutionSetActive deactivates or reactivates an institution (form field active=true|false).
func (h *Handlers) InstitutionSetActive(w http.ResponseWriter, r *http.Request) error {
	if _, err := web.UserWith(r, scope.BureauAdmin); err != nil {
		return err
	}
	id, err := web.PathID(r, "id")
	if err != nil {
		return err
	}
	if err := web.ParseForm(w, r, 0); err != nil {
		return err
	}
	active, err := strconv.ParseBool(r.PostForm.Get("active"))
	if err != nil {
		return apperr.Field("active", "institution.active_invalid", "active must be true or false")
	}
	if _, err := h.inst.SetActive(r.Context(), id, active); err != nil {
		return err
	}
	http.Redirect(w, r, "/institutions/"+strconv.FormatInt(id, 10)+"?notice=institution_saved", http.StatusSeeOther)
	return nil
}

// institutionDetailPage is the data of the institution_detail page.
type institutionDetailPage struct {
	Institution Institution
	Parent      *Institution // nil when none or outside the user's scope
	Children    []Institution
	MoreKids    bool
	Users       int
	HasUsers    bool // Users was counted
}

// InstitutionDetail shows one institution with its parent, children and user count.
func (h *Handlers) InstitutionDetail(w http.ResponseWriter, r *http.Request) error {
	if _, err := web.User(r); err != nil {
		return err
	}
	id, err := web.PathID(r, "id")
	if err != nil {
		return err
	}
	ctx := r.Context()
	in, err := h.inst.Get(ctx, id)
	if err != nil {
		return err
	}
	page := institutionDetailPage{Institution: in}
	if in.ParentID != 0 {
		// A parent above the user's scope is simply not shown.
		if parent, err := h.inst.Get(ctx, in.ParentID); err == nil {
			page.Parent = &parent
		} else if !apperr.Is(err, apperr.NotFound) {
			return err
		}
	}
	kids, next, err := h.inst.List(ctx, InstitutionFilter{ParentID: id, Limit: 200})
	if err != nil {
		return err
	}
	page.Children, page.MoreKids = kids, next != ""
	if h.users != nil {
		if page.Users, err = h.users(ctx, id); err != nil {
			return err
		}
		page.HasUsers = true
	}
	h.shell.Render(w, r, "institution_detail", page)
	return nil
}

// APIInstitutionList answers GET /api/v1/institutions.
func (h *Handlers) APIInstitutionList(w http.ResponseWriter, r *http.Request) error {
	if _, err := web.User(r); err != nil {
		return err
	}
	f, err := filterFrom(r, "region")
	if err != nil {
		return err
	}
	items, next, err := h.inst.List(r.Context(), f)
	if err != nil {
		return err
	}
	if items == nil {
		items = []Institution{}
	}
	web.WriteJSON(w, http.StatusOK, map[string]any{"items": items, "next_cursor": next})
	return nil
}

// APIInstitutionCreate answers POST /api/v1/institutions.
func (h *Handlers) APIInstitutionCreate(w http.ResponseWriter, r *http.Request) error {
	if _, err := web.UserWith(r, scope.BureauAdmin); err != nil {
		return err
	}
	var in InstitutionInput
	if err := web.DecodeJSON(w, r, &in, 16<<10); err != nil {
		return err
	}
	created, err := h.inst.Create(r.Context(), in)
	if err != nil {
		return err
	}
	w.Header().Set("Location", "/api/v1/institutions/"+strconv.FormatInt(created.ID, 10))
	web.WriteJSON(w, http.StatusCreated, created)
	return nil
}

// APIInstitutionGet answers GET /api/v1/institutions/{id}.
func (h *Handlers) APIInstitutionGet(w http.ResponseWriter, r *http.Request) error {
	if _, err := web.User(r); err != nil {
		return err
	}
	id, err := web.PathID(r, "id")
	if err != nil {
		return err
	}
	in, err := h.inst.Get(r.Context(), id)
	if err != nil {
		return err
	}
	web.WriteJSON(w, http.StatusOK, in)
	return nil
}
