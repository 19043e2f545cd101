package screening

import (
	"errors"
	"net/http"
	"net/url"
	"path"
	"strconv"
	"strings"
	"time"

	"github.com/shaobing/shaobing/internal/apperr"
	"github.com/shaobing/shaobing/internal/locale"
	"github.com/shaobing/shaobing/internal/people"
	"github.com/shaobing/shaobing/internal/regions"
	"github.com/shaobing/shaobing/internal/scope"
	"github.com/shaobing/shaobing/internal/tabular"
	"github.com/shaobing/shaobing/internal/web"
)

// Body limits of the results API. A JSON request carries at most
// MaxResults results of about 150 bytes; a file a lab's whole day.
const (
	maxResultsBody     = MaxResults * 256
	maxResultImport    = 100 << 20
	maxResultFormBody  = 16 << 10
	localDateTimeInput = "2006-01-02T15:04" // what <input type="datetime-local"> sends
)

// resultsRequest is the body of POST /api/v1/lab-results.
type resultsRequest struct {
	Results []ResultInput `json:"results"`
}

// APILabResults records a lab's results: POST /api/v1/lab-results. Each
// bad result is reported with its position in the list (from 1) and the
// others are recorded.
func (h *Handlers) APILabResults(w http.ResponseWriter, r *http.Request) error {
	if _, err := web.UserWith(r, ResultRoles...); err != nil {
		return err
	}
	var in resultsRequest
	if err := web.DecodeJSON(w, r, &in, maxResultsBody); err != nil {
		return err
	}
	switch {
	case len(in.Results) == 0:
		return apperr.Field("results", "required", "send at least one result")
	case len(in.Results) > MaxResults:
		return apperr.Field("results", "results.too_many", "send at most %d results at once; import larger sets as a file", MaxResults)
	}
	rep, err := h.svc.RecordResults(r.Context(), in.Results)
	if err != nil {
		return err
	}
	web.WriteJSON(w, http.StatusOK, rep)
	return nil
}

// APILabResultsImport records the results of a CSV or .xlsx body:
// POST /api/v1/lab-results/import. The format is ?format=, else the
// Content-Type, else the content.
func (h *Handlers) APILabResultsImport(w http.ResponseWriter, r *http.Request) error {
	if _, err := web.UserWith(r, ResultRoles...); err != nil {
		return err
	}
	body, f, err := web.ImportBody(w, r, maxResultImport)
	if err != nil {
		return err
	}
	rep, err := h.svc.ImportResults(r.Context(), body, f)
	if err != nil {
		return web.TooLarge(err, maxResultImport)
	}
	web.WriteJSON(w, http.StatusOK, rep)
	return nil
}

// resultForm is the lab page's form for one tube's result.
type resultForm struct {
	TubeCode string
	Result   Result
	CtORF1ab string
	CtN      string
	TestedAt string // as the datetime-local input shows it
}

// labPage is the data of screening_lab.
type labPage struct {
	State    TubeState // the list's tab
	Tabs     []TubeState
	Tubes    []Tube
	Next     string
	Form     resultForm
	Results  []Result
	Recorded string // the tube just resulted, from ?tube=
	Headers  []string
	Import   *importOutcome
	IsLab    bool
}

// importOutcome is a finished import's report, its problems translated.
type importOutcome struct {
	Report ResultReport
	Errors []resultProblem
}

// resultProblem is one rejected row's problem, translated.
type resultProblem struct {
	Row     int
	Field   string
	Message string
}

var labTabs = []TubeState{TubeInTransit, TubeReceived, TubeResulted}

// LabPage is a lab's workbench: boxes to receive, a result to enter per
// scanned tube, a file to import, and its tubes by state: GET /screening/lab.
func (h *Handlers) LabPage(w http.ResponseWriter, r *http.Request) error {
	if _, err := web.UserWith(r, ResultRoles...); err != nil {
		return err
	}
	v := r.URL.Query()
	d := h.newLabPage(r)
	d.Form.TubeCode = normalTubeCode(v.Get("code"))
	if v.Get("notice") == "screening.result_recorded" {
		d.Recorded = normalTubeCode(v.Get("tube"))
	}
	if err := h.labTubes(r, &d); err != nil {
		h.shell.RenderForm(w, r, "screening_lab", d, err)
		return nil
	}
	h.shell.Render(w, r, "screening_lab", d)
	return nil
}

func (h *Handlers) newLabPage(r *http.Request) labPage {
	p, _ := web.User(r)
	d := labPage{State: TubeReceived, Tabs: labTabs, Results: Results, Headers: ResultHeaders, IsLab: p != nil && p.InstitutionID != 0 && p.HasAny(ReceiveRoles...)}
	if s := TubeState(r.URL.Query().Get("state")); validTubeState(s) {
		d.State = s
	}
	d.Form.TestedAt = h.svc.now().In(h.shell.Location(r.Context())).Format(localDateTimeInput)
	return d
}

// labTubes fills the page's tube list.
func (h *Handlers) labTubes(r *http.Request, d *labPage) error {
	v := r.URL.Query()
	limit, err := web.Limit(v, 100, 500)
	if err != nil {
		return err
	}
	q := TubeQuery{States: []TubeState{d.State}, Cursor: v.Get("cursor"), Limit: limit}
	if p, err := web.User(r); err == nil && p.HasAny(scope.Lab) {
		q.LabID = p.InstitutionID // a lab's own tubes (0, no filter, for a lab role without an institution)
	}
	tubes, next, err := h.svc.Tubes(r.Context(), q)
	if err != nil {
		return err
	}
	d.Tubes = tubes
	if next != "" {
		d.Next = "/screening/lab?" + url.Values{"state": {string(d.State)}, "cursor": {next}}.Encode()
	}
	return nil
}

// LabReceive receives a box by its scanned code: POST /screening/lab/receive.
func (h *Handlers) LabReceive(w http.ResponseWriter, r *http.Request) error {
	if err := web.ParseForm(w, r, maxResultFormBody); err != nil {
		return err
	}
	b, err := h.svc.ReceiveBatch(r.Context(), r.PostForm.Get("batch_code"))
	if apperr.Is(err, apperr.NotFound) {
		d := h.newLabPage(r)
		if lerr := h.labTubes(r, &d); lerr != nil {
			return lerr
		}
		h.shell.RenderForm(w, r, "screening_lab", d, apperr.Field("batch_code", "batch.unknown", "no such batch for this lab"))
		return nil
	}
	if err != nil {
		return err
	}
	http.Redirect(w, r, "/screening/batches/"+url.PathEscape(b.Code)+"?notice=screening.batch_received", http.StatusSeeOther)
	return nil
}

// LabResult records one scanned tube's result from the lab page:
// POST /screening/lab/results.
func (h *Handlers) LabResult(w http.ResponseWriter, r *http.Request) error {
	if _, err := web.UserWith(r, ResultRoles...); err != nil {
		return err
	}
	if err := web.ParseForm(w, r, maxResultFormBody); err != nil {
		return err
	}
	f := r.PostForm
	form := resultForm{TubeCode: normalTubeCode(f.Get("tube_code")), Result: Result(f.Get("result")), CtORF1ab: strings.TrimSpace(f.Get("ct_orf1ab")),
		CtN: strings.TrimSpace(f.Get("ct_n")), TestedAt: strings.TrimSpace(f.Get("tested_at"))}
	in := ResultInput{Result: form.Result, TestedAt: form.TestedAt}
	if t, err := time.Parse(localDateTimeInput, form.TestedAt); err == nil {
		in.TestedAt = t.Format("2006-01-02 15:04") // local time in the bureau's zone
	}
	var problems apperr.Problems
	in.CtORF1ab = formCt(&problems, "ct_orf1ab", form.CtORF1ab)
	in.CtN = formCt(&problems, "ct_n", form.CtN)
	err := problems.Err()
	if err == nil {
		_, err = h.svc.RecordResult(r.Context(), form.TubeCode, in)
	}
	if err != nil {
		if apperr.Is(err, apperr.NotFound) {
			err = apperr.Field("tube_code", CodeTubeUnknown, "no such tube")
		} else if e := apperr.As(err); e != nil && e.Code == apperr.Conflict {
			err = &apperr.Error{Code: apperr.Invalid, Message: e.Message, Fields: e.Fields}
		}
		d := h.newLabPage(r)
		d.Form = form
		if lerr := h.labTubes(r, &d); lerr != nil {
			return lerr
		}
		h.shell.RenderForm(w, r, "screening_lab", d, err)
		return nil
	}
	http.Redirect(w, r, "/screening/lab?"+url.Values{"notice": {"screening.result_recorded"}, "tube": {form.TubeCode}}.Encode(), http.StatusSeeOther)
	return nil
}

// formCt reads an optional Ct value typed into a form.
func formCt(problems *apperr.Problems, field, s string) *float64 {
	if s == "" {
		return nil
	}
	v, err := strconv.ParseFloat(s, 64)
	if err != nil {
		problems.Add(field, CodeCtRange, "must be a number from 0 to %v", maxCt)
		return nil
	}
	return &v
}

// LabImport imports a results file from the lab page and shows the
// row-by-row report: POST /screening/lab/import.
func (h *Handlers) LabImport(w http.ResponseWriter, r *http.Request) error {
	if _, err := web.UserWith(r, ResultRoles...); err != nil {
		return err
	}
	d := h.newLabPage(r)
	if err := h.labTubes(r, &d); err != nil {
		return err
	}
	r.Body = http.MaxBytesReader(w, r.Body, maxResultImport+maxResultFormBody)
	file, hdr, err := r.FormFile("file")
	if err != nil {
		var tooBig *http.MaxBytesError
		if !errors.As(err, &tooBig) {
			err = apperr.Field("file", "file.required", "choose a CSV or Excel file")
		}
		h.shell.RenderForm(w, r, "screening_lab", d, web.TooLarge(err, maxResultImport))
		return nil
	}
	defer file.Close()
	f, err := tabular.ParseFormat(path.Ext(hdr.Filename))
	if err != nil {
		f = tabular.CSV // the content decides: Read tells an .xlsx by its bytes
	}
	rep, err := h.svc.ImportResults(r.Context(), file, f)
	if err != nil {
		h.shell.RenderForm(w, r, "screening_lab", d, err)
		return nil
	}
	d.Import = &importOutcome{Report: rep}
	lang := locale.FromRequest(r)
	for _, e := range rep.Rejected {
		msg := e.Error
		if key := "error." + e.Code; e.Code != "" && h.shell.Catalog.Has(key) {
			msg = h.shell.Catalog.T(lang, key, e.Args...)
		}
		d.Import.Errors = append(d.Import.Errors, resultProblem{Row: e.Row, Field: e.Field, Message: msg})
	}
	// The list reflects the import.
	if err := h.labTubes(r, &d); err != nil {
		return err
	}
	h.shell.Render(w, r, "screening_lab", d)
	return nil
}

// RecallJSON is a recall as the API sends it; the person and phone are
// masked.
type RecallJSON struct {
	ID                int64             `json:"id"`
	CampaignID        int64             `json:"campaign_id"`
	Person            people.PersonView `json:"person"`
	Phone             string            `json:"phone"`
	NoPhone           bool              `json:"no_phone"`
	TubeCode          string            `json:"tube_code"`
	SpecimenID        int64             `json:"specimen_id"`
	SamplingPointName string            `json:"sampling_point_name"`
	RegionCode        string            `json:"region_code"`
	RegionName        string            `json:"region_name"`
	Reason            Result            `json:"reason"`
	State             RecallState       `json:"state"`
	DueAt             time.Time         `json:"due_at"`
	CreatedAt         time.Time         `json:"created_at"`
	NotifiedAt        *time.Time        `json:"notified_at"`
	ResampledAt       *time.Time        `json:"resampled_at"`
	ResultedAt        *time.Time        `json:"resulted_at"`
}

func recallJSON(r Recall) RecallJSON {
	return RecallJSON{ID: r.ID, CampaignID: r.CampaignID, Person: r.Person, Phone: r.Phone, NoPhone: r.NoPhone, TubeCode: r.TubeCode,
		SpecimenID: r.SpecimenID, SamplingPointName: r.PointName, RegionCode: r.RegionCode, RegionName: r.RegionName, Reason: r.Reason,
		State: r.State, DueAt: r.DueAt, CreatedAt: r.CreatedAt, NotifiedAt: timePtr(r.NotifiedAt), ResampledAt: timePtr(r.ResampledAt),
		ResultedAt: timePtr(r.ResultedAt)}
}

// recallListJSON is a page of recalls.
type recallListJSON struct {
	Items      []RecallJSON `json:"items"`
	NextCursor string       `json:"next_cursor"`
}

// recallQueryFrom reads the recall filters of a query string.
func recallQueryFrom(v url.Values) (RecallQuery, error) {
	q := RecallQuery{RegionCode: strings.TrimSpace(v.Get("region_code")), State: RecallState(strings.TrimSpace(v.Get("state"))),
		Reason: Result(strings.TrimSpace(v.Get("reason"))), Cursor: v.Get("cursor")}
	var err error
	if q.Limit, err = web.Limit(v, defaultRecallLimit, maxRecallLimit); err != nil {
		return RecallQuery{}, err
	}
	if s := strings.TrimSpace(v.Get("campaign_id")); s != "" {
		if q.CampaignID, err = strconv.ParseInt(s, 10, 64); err != nil || q.CampaignID <= 0 {
			return RecallQuery{}, apperr.Field("campaign_id", "campaign_id.invalid", "campaign_id must be a campaign's id")
		}
	}
	return q, nil
}

// APIRecallList lists recalls in the caller's scope, masked:
// GET /api/v1/recalls?campaign_id=….
func (h *Handlers) APIRecallList(w http.ResponseWriter, r *http.Request) error {
	if _, err := web.UserWith(r, FollowRoles...); err != nil {
		return err
	}
	q, err := recallQueryFrom(r.URL.Query())
	if err != nil {
		return err
	}
	items, next, err := h.svc.Recalls(r.Context(), q)
	if err != nil {
		return err
	}
	out := recallListJSON{Items: make([]RecallJSON, len(items)), NextCursor: next}
	for i, rc := range items {
		out.Items[i] = recallJSON(rc)
	}
	web.WriteJSON(w, http.StatusOK, out)
	return nil
}

// APIRecallNotify records that a recalled person was told to come:
// POST /api/v1/recalls/{id}/notify.
func (h *Handlers) APIRecallNotify(w http.ResponseWriter, r *http.Request) error {
	id, err := web.PathID(r, "id")
	if err != nil {
		return err
	}
	rc, err := h.svc.NotifyRecall(r.Context(), id)
	if err != nil {
		return err
	}
	web.WriteJSON(w, http.StatusOK, recallJSON(rc))
	return nil
}

// recallsPage is the data of screening_recalls.
type recallsPage struct {
	Items      []Recall
	Campaigns  []Campaign
	CampaignID int64
	Region     regions.Picker
	States     []RecallState
	Reasons    []Result
	Next       string
	Export     string // the filters as a query string, for the export links
	Back       string // this page's URL, for the notify buttons
	Now        time.Time
}

// RecallsPage is the recall list of a campaign and region, printable as the
// township teams' calling list: GET /screening/recalls.
func (h *Handlers) RecallsPage(w http.ResponseWriter, r *http.Request) error {
	p, err := web.UserWith(r, FollowRoles...)
	if err != nil {
		return err
	}
	v := r.URL.Query()
	d := recallsPage{Region: h.svc.tree.Picker(p, v.Get("region_code")), States: RecallStates, Reasons: []Result{Positive, Suspicious, Invalid},
		Now: h.svc.now()}
	filters := url.Values{}
	for _, k := range []string{"campaign_id", "region_code", "state", "reason"} {
		if s := strings.TrimSpace(v.Get(k)); s != "" {
			filters.Set(k, s)
		}
	}
	d.Export = filters.Encode()
	d.Back = pageURL("/screening/recalls", v, "campaign_id", "region_code", "state", "reason", "limit", "cursor")
	if d.Campaigns, _, err = h.svc.Campaigns(r.Context(), CampaignQuery{Limit: 200}); err != nil {
		return err
	}
	q, err := recallQueryFrom(v)
	if err == nil {
		d.CampaignID = q.CampaignID
		var next string
		if d.Items, next, err = h.svc.Recalls(r.Context(), q); err == nil && next != "" {
			nv := url.Values{}
			for k, vs := range filters {
				nv[k] = vs
			}
			if s := v.Get("limit"); s != "" {
				nv.Set("limit", s)
			}
			nv.Set("cursor", next)
			d.Next = "/screening/recalls?" + nv.Encode()
		}
	}
	if err != nil {
		h.shell.RenderForm(w, r, "screening_recalls", d, err)
		return nil
	}
	h.shell.Render(w, r, "screening_recalls", d)
	return nil
}

// RecallNotifySubmit marks a recall notified from the list and returns to
// it: POST /screening/recalls/{id}/notify.
func (h *Handlers) RecallNotifySubmit(w http.ResponseWriter, r *http.Request) error {
	id, err := web.PathID(r, "id")
	if err != nil {
		return err
	}
	if err := web.ParseForm(w, r, 0); err != nil {
		return err
	}
	if _, err := h.svc.NotifyRecall(r.Context(), id); err != nil {
		return err
	}
	to := "/screening/recalls"
	if back := r.PostForm.Get("back"); localPath(back, "/screening/recalls") {
		to = back
	}
	http.Redirect(w, r, withNotice(to, "screening.recall_notified"), http.StatusSeeOther)
	return nil
}

// RecallsExport downloads the recalls matching the filters, masked, as CSV
// or .xlsx (?format=): GET /screening/recalls/export and
// GET /api/v1/recalls/export. The export is audited before any row.
func (h *Handlers) RecallsExport(w http.ResponseWriter, r *http.Request) error {
	if _, err := web.UserWith(r, FollowRoles...); err != nil {
		return err
	}
	q, err := recallQueryFrom(r.URL.Query())
	if err != nil {
		return err
	}
	lang := locale.FromRequest(r)
	t := func(key string) string { return h.shell.Catalog.T(lang, key) }
	cols, row := RecallTable(t)
	return h.shell.Export(w, r, "recalls", t("screening.recalls.title"), cols, func(f tabular.Format, write func([]any) error) error {
		return h.svc.ExportRecalls(r.Context(), q, string(f), func(rc Recall) error { return write(row(rc)) })
	})
}
