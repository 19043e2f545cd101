package people

import (
	"embed"
	"errors"
	"net/http"
	"net/url"
	"path"
	"strconv"
	"strings"

	"github.com/shaobing/shaobing/internal/apperr"
	"github.com/shaobing/shaobing/internal/audit"
	"github.com/shaobing/shaobing/internal/locale"
	"github.com/shaobing/shaobing/internal/regions"
	"github.com/shaobing/shaobing/internal/scope"
	"github.com/shaobing/shaobing/internal/tabular"
	"github.com/shaobing/shaobing/internal/web"
)

//go:embed templates/*.html
var templateFiles embed.FS

//go:embed messages.json
var messageFiles embed.FS

// Templates are the people pages.
var Templates = web.Templates{FS: templateFiles, Pattern: "templates/*.html"}

// Messages are the module's translations.
var Messages = locale.Source{FS: messageFiles, Name: "messages.json"}

// Roles may use the people pages and API. Samplers register persons only
// through specimen registration; labs and inspectors have no use for the
// registry.
var Roles = []scope.Role{scope.BureauAdmin, scope.Epidemiologist, scope.InstitutionStaff, scope.FamilyDoctor, scope.IsolationStaff}

// Body limits.
const (
	maxFormBody   = 64 << 10
	maxImportBody = 32 << 20
)

// Handlers serves the people pages and API.
type Handlers struct {
	shell *web.Shell
	reg   *Registry
}

// NewHandlers returns the handlers.
func NewHandlers(shell *web.Shell, reg *Registry) *Handlers {
	return &Handlers{shell: shell, reg: reg}
}

// registerRequest is the body of POST /api/v1/people.
type registerRequest struct {
	IDType     string `json:"id_type"`
	IDNumber   string `json:"id_number"`
	Name       string `json:"name"`
	Phone      string `json:"phone"`
	RegionCode string `json:"region_code"`
	NoPhone    bool   `json:"no_phone"`
	Address    string `json:"address"`
	Tags       []Tag  `json:"tags"`
}

// APIRegister registers a person: 201 when new, 200 when the same person
// (ID type and number) was registered before and has been updated.
func (h *Handlers) APIRegister(w http.ResponseWriter, r *http.Request) error {
	if _, err := web.UserWith(r, Roles...); err != nil {
		return err
	}
	var req registerRequest
	if err := web.DecodeJSON(w, r, &req, 0); err != nil {
		return err
	}
	p, created, err := h.reg.Register(r.Context(), NewPerson{
		IDType: IDType(req.IDType), IDNumber: req.IDNumber, Name: req.Name, Phone: req.Phone, NoPhone: req.NoPhone,
		Address: req.Address, RegionCode: req.RegionCode, Tags: req.Tags,
	})
	if err != nil {
		return err
	}
	status := http.StatusOK
	if created {
		status = http.StatusCreated
		w.Header().Set("Location", "/api/v1/people/"+strconv.FormatInt(p.ID, 10))
	}
	web.WriteJSON(w, status, p.Masked())
	return nil
}

// APIGet returns one person, masked.
func (h *Handlers) APIGet(w http.ResponseWriter, r *http.Request) error {
	if _, err := web.UserWith(r, Roles...); err != nil {
		return err
	}
	id, err := web.PathID(r, "id")
	if err != nil {
		return err
	}
	p, err := h.reg.Get(r.Context(), id)
	if err != nil {
		return err
	}
	web.WriteJSON(w, http.StatusOK, p.Masked())
	return nil
}

// listResponse is a page of persons.
type listResponse struct {
	Items      []PersonView `json:"items"`
	NextCursor string       `json:"next_cursor"`
}

// APISearch lists persons in the caller's scope, masked.
func (h *Handlers) APISearch(w http.ResponseWriter, r *http.Request) error {
	if _, err := web.UserWith(r, Roles...); err != nil {
		return err
	}
	q, err := queryFrom(r.URL.Query())
	if err != nil {
		return err
	}
	items, next, err := h.reg.Search(r.Context(), q)
	if err != nil {
		return err
	}
	resp := listResponse{Items: make([]PersonView, len(items)), NextCursor: cursor(next)}
	for i, p := range items {
		resp.Items[i] = p.Masked()
	}
	web.WriteJSON(w, http.StatusOK, resp)
	return nil
}

// APIUnmask returns one person in the clear, for a stated reason.
func (h *Handlers) APIUnmask(w http.ResponseWriter, r *http.Request) error {
	if _, err := web.UserWith(r, Roles...); err != nil {
		return err
	}
	id, err := web.PathID(r, "id")
	if err != nil {
		return err
	}
	var req struct {
		Reason string `json:"reason"`
	}
	if err := web.DecodeJSON(w, r, &req, 0); err != nil {
		return err
	}
	p, err := h.reg.Unmask(r.Context(), id, req.Reason)
	if err != nil {
		return err
	}
	web.WriteJSON(w, http.StatusOK, p.Unmasked())
	return nil
}

// APIImport registers the rows of a CSV or .xlsx body and reports the bad ones.
func (h *Handlers) APIImport(w http.ResponseWriter, r *http.Request) error {
	if _, err := web.UserWith(r, Roles...); err != nil {
		return err
	}
	body, f, err := web.ImportBody(w, r, maxImportBody)
	if err != nil {
		return err
	}
	res, err := h.reg.Import(r.Context(), body, f)
	if err != nil {
		return web.TooLarge(err, maxImportBody)
	}
	web.WriteJSON(w, http.StatusOK, res)
	return nil
}

// fileMissing explains a failed upload: too large, or no file chosen.
func fileMissing(err error) error {
	var tooBig *http.MaxBytesError
	if errors.As(err, &tooBig) {
		return err
	}
	return apperr.Field("file", "file.required", "choose a CSV or Excel file")
}

// Export writes the persons matching the filters, masked, as CSV or .xlsx.
// It serves both the page's export links and the API.
func (h *Handlers) Export(w http.ResponseWriter, r *http.Request) error {
	if _, err := web.UserWith(r, Roles...); err != nil {
		return err
	}
	q, err := queryFrom(r.URL.Query())
	if err != nil {
		return err
	}
	lang := locale.FromRequest(r)
	t := func(key string) string { return h.shell.Catalog.T(lang, key) }
	cols, row := ExportTable(t)
	return h.shell.Export(w, r, "people", t("people.title"), cols, func(f tabular.Format, write func([]any) error) error {
		// The registry checks the filters and records the export before the
		// first row, so a bad filter still gets an error page.
		return h.reg.Export(r.Context(), q, string(f), func(p Person) error { return write(row(p)) })
	})
}

func sexLabel(t func(string) string, s Sex) string {
	if s == SexUnknown {
		return ""
	}
	return t("people.sex." + string(s))
}

func tagLabels(t func(string) string, tags []Tag) string {
	s := make([]string, len(tags))
	for i, tag := range tags {
		s[i] = t("people.tag." + string(tag))
	}
	return strings.Join(s, "、")
}

// queryFrom reads the list filters of a request's query.
func queryFrom(v url.Values) (Query, error) {
	limit, err := web.Limit(v, DefaultLimit, MaxLimit)
	if err != nil {
		return Query{}, err
	}
	var after int64
	if err := web.DecodeCursor(v.Get("cursor"), &after); err != nil {
		return Query{}, err
	}
	return Query{
		RegionCode: strings.TrimSpace(v.Get("region_code")),
		Q:          v.Get("q"),
		Tag:        Tag(strings.TrimSpace(v.Get("tag"))),
		Cursor:     after,
		Limit:      limit,
	}, nil
}

// cursor encodes the next page's position; "" when there is none.
func cursor(next int64) string {
	if next == 0 {
		return ""
	}
	return web.EncodeCursor(next)
}

// listPage is the data of the people_list page.
type listPage struct {
	Items  []PersonView
	Region regions.Picker // the region_code filter
	Tags   []Tag
	Next   string // URL of the next page, "" on the last
	Export string // query string of the filters, for the export links
}

// List shows the persons in the user's scope.
func (h *Handlers) List(w http.ResponseWriter, r *http.Request) error {
	pr, err := web.UserWith(r, Roles...)
	if err != nil {
		return err
	}
	v := r.URL.Query()
	data := listPage{Region: h.reg.tree.Picker(pr, v.Get("region_code")), Tags: Tags()}
	filters := url.Values{}
	for _, k := range []string{"region_code", "q", "tag"} {
		if s := v.Get(k); s != "" {
			filters.Set(k, s)
		}
	}
	data.Export = filters.Encode()
	q, err := queryFrom(v)
	if err == nil {
		var items []Person
		var next int64
		if items, next, err = h.reg.Search(r.Context(), q); err == nil {
			for _, p := range items {
				data.Items = append(data.Items, p.Masked())
			}
			if next != 0 {
				nv := url.Values{}
				for k, vs := range filters {
					nv[k] = vs
				}
				if s := v.Get("limit"); s != "" {
					nv.Set("limit", s)
				}
				nv.Set("cursor", cursor(next))
				data.Next = "/people?" + nv.Encode()
			}
		}
	}
	if err != nil {
		h.shell.RenderForm(w, r, "people_list", data, err)
		return nil
	}
	h.shell.Render(w, r, "people_list", data)
	return nil
}

// formPage is the data of the people_new page.
type formPage struct {
	Form    registerRequest
	Tagged  map[Tag]bool
	IDTypes []IDType
	Tags    []Tag
	Region  regions.Picker // the region_code field
}

// New shows the registration form.
func (h *Handlers) New(w http.ResponseWriter, r *http.Request) error {
	pr, err := web.UserWith(r, Roles...)
	if err != nil {
		return err
	}
	h.shell.Render(w, r, "people_new", formPage{Form: registerRequest{IDType: string(IDResident)}, Tagged: map[Tag]bool{}, IDTypes: IDTypes(), Tags: Tags(),
		Region: h.reg.tree.Picker(pr, "")})
	return nil
}

// Create registers the person of the form and shows them, or shows the form
// again with each bad field's error next to it.
func (h *Handlers) Create(w http.ResponseWriter, r *http.Request) error {
	pr, err := web.UserWith(r, Roles...)
	if err != nil {
		return err
	}
	if err := web.ParseForm(w, r, 0); err != nil {
		return err
	}
	data := formPage{Form: registerRequest{
		IDType: r.PostForm.Get("id_type"), IDNumber: r.PostForm.Get("id_number"), Name: r.PostForm.Get("name"),
		Phone: r.PostForm.Get("phone"), RegionCode: r.PostForm.Get("region_code"), Address: r.PostForm.Get("address"),
		NoPhone: checked(r.PostForm.Get("no_phone")),
	}, Tagged: map[Tag]bool{}, IDTypes: IDTypes(), Tags: Tags()}
	data.Region = h.reg.tree.Picker(pr, data.Form.RegionCode)
	// Unchecked boxes send nothing, so no tags ticked keeps a
	// re-registered person's tags.
	for _, s := range r.PostForm["tags"] {
		data.Form.Tags = append(data.Form.Tags, Tag(s))
		data.Tagged[Tag(s)] = true
	}
	p, created, err := h.reg.Register(r.Context(), NewPerson{
		IDType: IDType(data.Form.IDType), IDNumber: data.Form.IDNumber, Name: data.Form.Name, Phone: data.Form.Phone,
		NoPhone: data.Form.NoPhone, Address: data.Form.Address, RegionCode: data.Form.RegionCode, Tags: data.Form.Tags,
	})
	if err != nil {
		h.shell.RenderForm(w, r, "people_new", data, err)
		return nil
	}
	notice := "people.updated"
	if created {
		notice = "people.created"
	}
	http.Redirect(w, r, "/people/"+strconv.FormatInt(p.ID, 10)+"?notice="+notice, http.StatusSeeOther)
	return nil
}

func checked(s string) bool { return s == "on" || s == "1" || s == "true" }

// detailPage is the data of the people_detail page.
type detailPage struct {
	View      PersonView
	CanUnmask bool
	Reason    string
	// History is the latest audit entries about the person, shown to bureau
	// admins only (ShowHistory); HistoryURL is the audit page filtered to them.
	ShowHistory bool
	History     []audit.Item
	HistoryURL  string
}

// historyLimit is how many audit entries the detail page shows.
const historyLimit = 20

// withHistory adds the person's latest audit entries to d for a bureau
// admin: DESIGN.md §4/§6 make reads and unmasking accountable, and the admin
// responsible for a person sees who touched them where they work.
func (h *Handlers) withHistory(r *http.Request, pr *scope.Principal, p Person, d detailPage) (detailPage, error) {
	if !pr.Has(scope.BureauAdmin) {
		return d, nil
	}
	items, err := h.reg.History(r.Context(), p, historyLimit)
	if err != nil {
		return d, err
	}
	d.ShowHistory, d.History = true, items
	d.HistoryURL = "/audit?" + url.Values{"object_type": {"person"}, "object_id": {strconv.FormatInt(p.ID, 10)}}.Encode()
	return d, nil
}

// Detail shows one person, masked, with the unmask form for those allowed.
func (h *Handlers) Detail(w http.ResponseWriter, r *http.Request) error {
	pr, err := web.UserWith(r, Roles...)
	if err != nil {
		return err
	}
	id, err := web.PathID(r, "id")
	if err != nil {
		return err
	}
	p, err := h.reg.Get(r.Context(), id)
	if err != nil {
		return err
	}
	d, err := h.withHistory(r, pr, p, detailPage{View: p.Masked(), CanUnmask: pr.HasAny(UnmaskRoles...)})
	if err != nil {
		return err
	}
	h.shell.Render(w, r, "people_detail", d)
	return nil
}

// Unmask shows one person in the clear, once, on the response to the unmask
// form; the page is never cached (the shell sends no-store).
func (h *Handlers) Unmask(w http.ResponseWriter, r *http.Request) error {
	pr, err := web.UserWith(r, Roles...)
	if err != nil {
		return err
	}
	id, err := web.PathID(r, "id")
	if err != nil {
		return err
	}
	if err := web.ParseForm(w, r, 0); err != nil {
		return err
	}
	reason := r.PostForm.Get("reason")
	p, err := h.reg.Unmask(r.Context(), id, reason)
	if apperr.Is(err, apperr.Invalid) {
		masked, gerr := h.reg.Get(r.Context(), id)
		if gerr != nil {
			return gerr
		}
		d, herr := h.withHistory(r, pr, masked, detailPage{View: masked.Masked(), CanUnmask: true, Reason: reason})
		if herr != nil {
			return herr
		}
		h.shell.RenderForm(w, r, "people_detail", d, err)
		return nil
	}
	if err != nil {
		return err
	}
	d, err := h.withHistory(r, pr, p, detailPage{View: p.Unmasked(), CanUnmask: pr.HasAny(UnmaskRoles...)})
	if err != nil {
		return err
	}
	h.shell.Render(w, r, "people_detail", d)
	return nil
}

// importPage is the data of the people_import page.
type importPage struct {
	Headers []string
	Done    bool
	Result  ImportResult
	Errors  []rowProblem
}

// rowProblem is a rejected row's problem, translated.
type rowProblem struct {
	Row     int
	Field   string
	Message string
}

// ImportForm shows the upload form.
func (h *Handlers) ImportForm(w http.ResponseWriter, r *http.Request) error {
	if _, err := web.UserWith(r, Roles...); err != nil {
		return err
	}
	h.shell.Render(w, r, "people_import", importPage{Headers: ImportHeaders})
	return nil
}

// Import registers an uploaded file and shows the row-by-row report.
func (h *Handlers) Import(w http.ResponseWriter, r *http.Request) error {
	if _, err := web.UserWith(r, Roles...); err != nil {
		return err
	}
	data := importPage{Headers: ImportHeaders}
	r.Body = http.MaxBytesReader(w, r.Body, maxImportBody+maxFormBody)
	file, hdr, err := r.FormFile("file")
	if err != nil {
		h.shell.RenderForm(w, r, "people_import", data, web.TooLarge(fileMissing(err), maxImportBody))
		return nil
	}
	defer file.Close()
	f, err := tabular.ParseFormat(path.Ext(hdr.Filename))
	if err != nil {
		f = tabular.CSV // the content decides; Read tells an .xlsx by its bytes
	}
	res, err := h.reg.Import(r.Context(), file, f)
	if err != nil {
		h.shell.RenderForm(w, r, "people_import", data, err)
		return nil
	}
	lang := locale.FromRequest(r)
	data.Done, data.Result = true, res
	for _, e := range res.Rejected {
		msg := e.Error
		if key := "error." + e.Code; e.Code != "" && h.shell.Catalog.Has(key) {
			msg = h.shell.Catalog.T(lang, key, e.Args...)
		}
		data.Errors = append(data.Errors, rowProblem{Row: e.Row, Field: e.Field, Message: msg})
	}
	h.shell.Render(w, r, "people_import", data)
	return nil
}
