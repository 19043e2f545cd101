package screening

import (
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/shaobing/shaobing/internal/apperr"
	"github.com/shaobing/shaobing/internal/people"
	"github.com/shaobing/shaobing/internal/web"
)

// Body limits of the tube and batch API.
const (
	maxBatchRequestBody = 64 << 10
	maxSingleResultBody = 4 << 10
)

// TubeJSON is a tube as the API sends it.
type TubeJSON struct {
	ID                int64      `json:"id"`
	Code              string     `json:"code"`
	State             TubeState  `json:"state"`
	Capacity          int        `json:"capacity"`
	MemberCount       int        `json:"member_count"`
	Result            *Result    `json:"result"`
	CtORF1ab          *float64   `json:"ct_orf1ab"`
	CtN               *float64   `json:"ct_n"`
	TestedAt          *time.Time `json:"tested_at"`
	ResultedAt        *time.Time `json:"resulted_at"`
	ReportedAt        *time.Time `json:"reported_at"`
	CampaignID        int64      `json:"campaign_id"`
	SamplingPointID   int64      `json:"sampling_point_id"`
	SamplingPointName string     `json:"sampling_point_name"`
	RegionCode        string     `json:"region_code"`
	Lab               *LabJSON   `json:"lab"`
	BatchCode         *string    `json:"batch_code"`
	FirstSampledAt    time.Time  `json:"first_sampled_at"`
	SealedAt          *time.Time `json:"sealed_at"`
	ReceivedAt        *time.Time `json:"received_at"`
}

// LabJSON names a lab.
type LabJSON struct {
	ID   int64  `json:"id"`
	Name string `json:"name"`
}

// TubeDetailJSON is a tube with its members, as GET /api/v1/tubes/{code}
// sends it.
type TubeDetailJSON struct {
	TubeJSON
	Members []MemberJSON `json:"members"`
}

// MemberJSON is one member of a tube; the person is masked.
type MemberJSON struct {
	SpecimenID int64             `json:"specimen_id"`
	Person     people.PersonView `json:"person"`
	RegionCode string            `json:"region_code"`
	SampledAt  time.Time         `json:"sampled_at"`
	Recall     *MemberRecallJSON `json:"recall"`
}

// MemberRecallJSON is a member's recall.
type MemberRecallJSON struct {
	ID     int64       `json:"id"`
	Reason Result      `json:"reason"`
	State  RecallState `json:"state"`
	DueAt  time.Time   `json:"due_at"`
}

func timePtr(t time.Time) *time.Time {
	if t.IsZero() {
		return nil
	}
	return &t
}

// tubeJSON converts a tube for the API.
func tubeJSON(t Tube) TubeJSON {
	out := TubeJSON{ID: t.ID, Code: t.Code, State: t.State, Capacity: t.Capacity, MemberCount: t.MemberCount,
		CtORF1ab: t.CtORF1ab, CtN: t.CtN, TestedAt: timePtr(t.TestedAt), ResultedAt: timePtr(t.ResultedAt), ReportedAt: timePtr(t.ReportedAt),
		CampaignID: t.CampaignID, SamplingPointID: t.SamplingPointID, SamplingPointName: t.PointName, RegionCode: t.RegionCode,
		FirstSampledAt: t.FirstSampledAt, SealedAt: timePtr(t.SealedAt), ReceivedAt: timePtr(t.ReceivedAt)}
	if t.Result != "" {
		r := t.Result
		out.Result = &r
	}
	if t.LabID != 0 {
		out.Lab = &LabJSON{ID: t.LabID, Name: t.LabName}
	}
	if t.BatchCode != "" {
		c := t.BatchCode
		out.BatchCode = &c
	}
	return out
}

// tubeDetailJSON converts a tube with its members for the API.
func tubeDetailJSON(t Tube) TubeDetailJSON {
	out := TubeDetailJSON{TubeJSON: tubeJSON(t), Members: make([]MemberJSON, len(t.Members))}
	for i, m := range t.Members {
		out.Members[i] = MemberJSON{SpecimenID: m.SpecimenID, Person: m.Person, RegionCode: m.RegionCode, SampledAt: m.SampledAt}
		if m.Recall.ID != 0 {
			out.Members[i].Recall = &MemberRecallJSON{ID: m.Recall.ID, Reason: m.Recall.Reason, State: m.Recall.State, DueAt: m.Recall.DueAt}
		}
	}
	return out
}

// APITubeGet returns a tube with its members, masked: GET /api/v1/tubes/{code}.
func (h *Handlers) APITubeGet(w http.ResponseWriter, r *http.Request) error {
	t, err := h.svc.Tube(r.Context(), r.PathValue("code"))
	if err != nil {
		return err
	}
	web.WriteJSON(w, http.StatusOK, tubeDetailJSON(t))
	return nil
}

// tubeListJSON is a page of tubes.
type tubeListJSON struct {
	Items      []TubeJSON `json:"items"`
	NextCursor string     `json:"next_cursor"`
}

// tubeQueryFrom reads the tube list filters: state (repeatable),
// sampling_point_id, lab_id, cursor and limit.
func tubeQueryFrom(v url.Values) (TubeQuery, error) {
	q := TubeQuery{Cursor: v.Get("cursor")}
	var err error
	if q.Limit, err = web.Limit(v, 100, 500); err != nil {
		return TubeQuery{}, err
	}
	for _, s := range v["state"] {
		for _, st := range strings.Split(s, ",") {
			if st = strings.TrimSpace(st); st != "" {
				q.States = append(q.States, TubeState(st))
			}
		}
	}
	if s := v.Get("sampling_point_id"); s != "" {
		if q.SamplingPointID, err = strconv.ParseInt(s, 10, 64); err != nil || q.SamplingPointID <= 0 {
			return TubeQuery{}, apperr.Field("sampling_point_id", "sampling_point.unknown", "no such sampling point")
		}
	}
	if s := v.Get("lab_id"); s != "" {
		if q.LabID, err = strconv.ParseInt(s, 10, 64); err != nil || q.LabID <= 0 {
			return TubeQuery{}, apperr.Field("lab_id", CodeLabUnknown, "no such lab")
		}
	}
	return q, nil
}

// APITubeList lists the tubes in the caller's scope, newest first, e.g. a
// lab's tubes in transit to it: GET /api/v1/tubes?state=in_transit.
func (h *Handlers) APITubeList(w http.ResponseWriter, r *http.Request) error {
	q, err := tubeQueryFrom(r.URL.Query())
	if err != nil {
		return err
	}
	tubes, next, err := h.svc.Tubes(r.Context(), q)
	if err != nil {
		return err
	}
	out := tubeListJSON{Items: make([]TubeJSON, len(tubes)), NextCursor: next}
	for i, t := range tubes {
		out.Items[i] = tubeJSON(t)
	}
	web.WriteJSON(w, http.StatusOK, out)
	return nil
}

// APITubeSeal seals an open tube: POST /api/v1/tubes/{code}/seal.
func (h *Handlers) APITubeSeal(w http.ResponseWriter, r *http.Request) error {
	t, err := h.svc.SealTube(r.Context(), r.PathValue("code"))
	if err != nil {
		return err
	}
	web.WriteJSON(w, http.StatusOK, tubeJSON(t))
	return nil
}

// APITubeReport records the positive report of a tube: POST /api/v1/tubes/{code}/report.
func (h *Handlers) APITubeReport(w http.ResponseWriter, r *http.Request) error {
	t, err := h.svc.ReportTube(r.Context(), r.PathValue("code"))
	if err != nil {
		return err
	}
	web.WriteJSON(w, http.StatusOK, tubeJSON(t))
	return nil
}

// singleResult is the body of POST /api/v1/tubes/{code}/result.
type singleResult struct {
	Result   Result   `json:"result"`
	CtORF1ab *float64 `json:"ct_orf1ab"`
	CtN      *float64 `json:"ct_n"`
	TestedAt string   `json:"tested_at"`
}

// APITubeResult records one tube's result: POST /api/v1/tubes/{code}/result.
func (h *Handlers) APITubeResult(w http.ResponseWriter, r *http.Request) error {
	if _, err := web.UserWith(r, ResultRoles...); err != nil {
		return err
	}
	var in singleResult
	if err := web.DecodeJSON(w, r, &in, maxSingleResultBody); err != nil {
		return err
	}
	t, err := h.svc.RecordResult(r.Context(), r.PathValue("code"),
		ResultInput{Result: in.Result, CtORF1ab: in.CtORF1ab, CtN: in.CtN, TestedAt: in.TestedAt})
	if err != nil {
		return err
	}
	web.WriteJSON(w, http.StatusOK, tubeJSON(t))
	return nil
}

// BatchJSON is a batch as the API sends it.
type BatchJSON struct {
	ID                int64           `json:"id"`
	Code              string          `json:"code"`
	State             BatchState      `json:"state"`
	CampaignID        int64           `json:"campaign_id"`
	SamplingPointID   int64           `json:"sampling_point_id"`
	SamplingPointName string          `json:"sampling_point_name"`
	Lab               LabJSON         `json:"lab"`
	TubeCount         int             `json:"tube_count"`
	SpecimenCount     int             `json:"specimen_count"`
	CreatedAt         time.Time       `json:"created_at"`
	ReceivedAt        *time.Time      `json:"received_at"`
	Tubes             []BatchTubeJSON `json:"tubes"`
}

// BatchTubeJSON is one tube of a batch.
type BatchTubeJSON struct {
	Code        string    `json:"code"`
	State       TubeState `json:"state"`
	MemberCount int       `json:"member_count"`
	Result      *Result   `json:"result"`
}

func batchJSON(b Batch) BatchJSON {
	out := BatchJSON{ID: b.ID, Code: b.Code, State: b.State, CampaignID: b.CampaignID, SamplingPointID: b.SamplingPointID,
		SamplingPointName: b.PointName, Lab: LabJSON{ID: b.LabID, Name: b.LabName}, TubeCount: b.TubeCount, SpecimenCount: b.Specimens(),
		CreatedAt: b.CreatedAt, ReceivedAt: timePtr(b.ReceivedAt), Tubes: make([]BatchTubeJSON, len(b.Tubes))}
	for i, t := range b.Tubes {
		out.Tubes[i] = BatchTubeJSON{Code: t.Code, State: t.State, MemberCount: t.MemberCount}
		if t.Result != "" {
			res := t.Result
			out.Tubes[i].Result = &res
		}
	}
	return out
}

// APIBatchCreate hands sealed tubes to a lab in a box: POST /api/v1/batches.
// A new batch answers 201; the same handover sent again 200 with it.
func (h *Handlers) APIBatchCreate(w http.ResponseWriter, r *http.Request) error {
	if _, err := web.UserWith(r, SampleRoles...); err != nil {
		return err
	}
	var in NewBatch
	if err := web.DecodeJSON(w, r, &in, maxBatchRequestBody); err != nil {
		return err
	}
	b, created, err := h.svc.CreateBatch(r.Context(), in)
	if err != nil {
		return err
	}
	status := http.StatusOK
	if created {
		status = http.StatusCreated
		w.Header().Set("Location", "/api/v1/batches/"+url.PathEscape(b.Code))
	}
	web.WriteJSON(w, status, batchJSON(b))
	return nil
}

// APIBatchGet returns a batch with its tubes: GET /api/v1/batches/{code}.
func (h *Handlers) APIBatchGet(w http.ResponseWriter, r *http.Request) error {
	b, err := h.svc.Batch(r.Context(), r.PathValue("code"))
	if err != nil {
		return err
	}
	web.WriteJSON(w, http.StatusOK, batchJSON(b))
	return nil
}

// APIBatchReceive records a batch's arrival at its lab:
// POST /api/v1/batches/{code}/receive.
func (h *Handlers) APIBatchReceive(w http.ResponseWriter, r *http.Request) error {
	b, err := h.svc.ReceiveBatch(r.Context(), r.PathValue("code"))
	if err != nil {
		return err
	}
	web.WriteJSON(w, http.StatusOK, batchJSON(b))
	return nil
}

// tubePage is the data of screening_tube.
type tubePage struct {
	Tube      Tube
	CanSeal   bool
	CanReport bool
	CanResult bool
}

// TubeFind looks a tube up by its code (typed or scanned): GET /screening/tubes.
func (h *Handlers) TubeFind(w http.ResponseWriter, r *http.Request) error {
	if _, err := web.UserWith(r, TubeRoles...); err != nil {
		return err
	}
	if code := normalTubeCode(r.URL.Query().Get("code")); code != "" {
		http.Redirect(w, r, "/screening/tubes/"+url.PathEscape(code), http.StatusSeeOther)
		return nil
	}
	h.shell.Render(w, r, "screening_tube_find", nil)
	return nil
}

// TubePage shows a tube: its members (masked) with their recalls, its
// result and report, printable: GET /screening/tubes/{code}.
func (h *Handlers) TubePage(w http.ResponseWriter, r *http.Request) error {
	p, err := web.UserWith(r, TubeRoles...)
	if err != nil {
		return err
	}
	t, err := h.svc.Tube(r.Context(), r.PathValue("code"))
	if err != nil {
		return err
	}
	h.shell.Render(w, r, "screening_tube", tubePage{Tube: t,
		CanSeal:   t.State == TubeOpen && p.HasAny(SampleRoles...),
		CanReport: t.NeedsReport() && p.HasAny(ReportRoles...),
		CanResult: slices.Contains([]TubeState{TubeSealed, TubeInTransit, TubeReceived}, t.State) && p.HasAny(ResultRoles...),
	})
	return nil
}

// TubeSealSubmit seals a tube from its page: POST /screening/tubes/{code}/seal.
func (h *Handlers) TubeSealSubmit(w http.ResponseWriter, r *http.Request) error {
	t, err := h.svc.SealTube(r.Context(), r.PathValue("code"))
	if err != nil {
		return err
	}
	http.Redirect(w, r, "/screening/tubes/"+url.PathEscape(t.Code)+"?notice=screening.tube_sealed", http.StatusSeeOther)
	return nil
}

// TubeReportSubmit records a positive report from the tube page or the
// CDC's list: POST /screening/tubes/{code}/report. It returns to the list
// when it came from there.
func (h *Handlers) TubeReportSubmit(w http.ResponseWriter, r *http.Request) error {
	if err := web.ParseForm(w, r, 0); err != nil {
		return err
	}
	t, err := h.svc.ReportTube(r.Context(), r.PathValue("code"))
	if err != nil {
		return err
	}
	to := "/screening/tubes/" + url.PathEscape(t.Code)
	if back := r.PostForm.Get("back"); localPath(back, "/screening/positives") {
		to = back
	}
	http.Redirect(w, r, withNotice(to, "screening.tube_reported"), http.StatusSeeOther)
	return nil
}

// pageURL is a list page's own URL with only the named query parameters
// (its filters and page, not a one-off notice), to return to after a form.
func pageURL(path string, v url.Values, keep ...string) string {
	q := url.Values{}
	for _, k := range keep {
		if s := v.Get(k); s != "" {
			q.Set(k, s)
		}
	}
	if len(q) == 0 {
		return path
	}
	return path + "?" + q.Encode()
}

// localPath reports whether back is a path under prefix on this site, so a
// form's return address cannot send the user elsewhere.
func localPath(back, prefix string) bool {
	return strings.HasPrefix(back, prefix) && !strings.HasPrefix(back, "//") && !strings.ContainsAny(back, "\\\r\n")
}

// withNotice adds ?notice= (or &notice=) to a local URL.
func withNotice(to, notice string) string {
	sep := "?"
	if strings.Contains(to, "?") {
		sep = "&"
	}
	return to + sep + "notice=" + url.QueryEscape(notice)
}

// handoverPage is the data of screening_batch_new.
type handoverPage struct {
	Tubes    []Tube // sealed tubes waiting for handover
	More     bool   // more sealed tubes than listed
	Labs     []Lab
	Code     string
	LabID    int64
	Selected map[string]bool
	Scanned  string // codes scanned or typed, one a line
	// Added is the code just scanned into the list (without JavaScript a
	// camera or USB scan submits the form to add it); ScannedCount counts
	// the list.
	Added        string
	ScannedCount int
}

// handoverListLimit bounds the sealed tubes the handover page lists; more
// are scanned in.
const handoverListLimit = 300

// HandoverPage is a point's handover form: the sealed tubes to tick (or
// scan), the lab, the box code: GET /screening/handover.
func (h *Handlers) HandoverPage(w http.ResponseWriter, r *http.Request) error {
	if _, err := web.UserWith(r, SampleRoles...); err != nil {
		return err
	}
	data, err := h.handoverData(r, handoverPage{Selected: map[string]bool{}})
	if err != nil {
		return err
	}
	h.shell.Render(w, r, "screening_batch_new", data)
	return nil
}

func (h *Handlers) handoverData(r *http.Request, d handoverPage) (handoverPage, error) {
	tubes, next, err := h.svc.Tubes(r.Context(), TubeQuery{States: []TubeState{TubeSealed}, Limit: handoverListLimit})
	if err != nil {
		return d, err
	}
	d.Tubes, d.More = tubes, next != ""
	if d.Labs, err = h.svc.Labs(r.Context()); err != nil {
		return d, err
	}
	if d.LabID == 0 && len(d.Labs) == 1 {
		d.LabID = d.Labs[0].ID
	}
	return d, nil
}

// HandoverSubmit hands the ticked and scanned tubes over and shows the
// printable transfer list (action=handover), or else adds the scanned tube
// to the form's list: POST /screening/handover.
func (h *Handlers) HandoverSubmit(w http.ResponseWriter, r *http.Request) error {
	if _, err := web.UserWith(r, SampleRoles...); err != nil {
		return err
	}
	if err := web.ParseForm(w, r, 0); err != nil {
		return err
	}
	f := r.PostForm
	d := handoverPage{Code: f.Get("code"), Selected: map[string]bool{}}
	d.LabID, _ = strconv.ParseInt(f.Get("lab_id"), 10, 64)
	for _, c := range f["tube_codes"] {
		d.Selected[normalTubeCode(c)] = true
	}
	scanned := splitCodes(f.Get("scanned"))
	added := normalTubeCode(f.Get("add"))
	if added != "" && !slices.Contains(scanned, added) {
		scanned = append(scanned, added)
	}
	d.Scanned, d.ScannedCount = strings.Join(scanned, "\n"), len(scanned)
	// Only the hand-over button hands over: Enter in any field (a USB
	// scanner ends with it) or a camera scan adds the scanned code.
	if f.Get("action") != "handover" {
		d.Added = added
		data, err := h.handoverData(r, d)
		if err != nil {
			return err
		}
		h.shell.Render(w, r, "screening_batch_new", data)
		return nil
	}
	var codes []string
	for _, c := range append(slices.Clone(f["tube_codes"]), scanned...) {
		if c = normalTubeCode(c); c != "" && !slices.Contains(codes, c) {
			codes = append(codes, c)
		}
	}
	b, _, err := h.svc.CreateBatch(r.Context(), NewBatch{Code: d.Code, LabID: d.LabID, TubeCodes: codes})
	if err != nil {
		data, derr := h.handoverData(r, d)
		if derr != nil {
			return derr
		}
		h.shell.RenderForm(w, r, "screening_batch_new", data, namedTubeErrors(err, codes))
		return nil
	}
	http.Redirect(w, r, "/screening/batches/"+url.PathEscape(b.Code)+"?notice=screening.batch_created", http.StatusSeeOther)
	return nil
}

// splitCodes reads codes separated by spaces, commas, semicolons or lines
// (what a USB scanner types into a text area), normalised and without
// repeats.
func splitCodes(s string) []string {
	var out []string
	for _, c := range strings.FieldsFunc(s, func(c rune) bool { return strings.ContainsRune(" ,;，；\t\r\n", c) }) {
		if c = normalTubeCode(c); !slices.Contains(out, c) {
			out = append(out, c)
		}
	}
	return out
}

// namedTubeErrors renames the fields tube_codes[i] of a handover's error to
// "tube <code>", so the form can say which ticked or scanned tube is wrong.
func namedTubeErrors(err error, codes []string) error {
	e := apperr.As(err)
	if e == nil || len(e.Fields) == 0 {
		return err
	}
	out := *e
	out.Fields = slices.Clone(e.Fields)
	for i, f := range out.Fields {
		if n, ok := tubeIndex(f.Field); ok && n < len(codes) {
			out.Fields[i].Field = "tube " + codes[n]
		}
	}
	return &out
}

// tubeIndex reads i from the field name "tube_codes[i]".
func tubeIndex(field string) (int, bool) {
	s, ok := strings.CutPrefix(field, "tube_codes[")
	if !ok {
		return 0, false
	}
	s, ok = strings.CutSuffix(s, "]")
	if !ok {
		return 0, false
	}
	n, err := strconv.Atoi(s)
	return n, err == nil && n >= 0
}

// batchPage is the data of screening_batch.
type batchPage struct {
	Batch      Batch
	CanReceive bool
}

// BatchPage is a batch's transfer list (转运单), printable, with the lab's
// receive button: GET /screening/batches/{code}.
func (h *Handlers) BatchPage(w http.ResponseWriter, r *http.Request) error {
	p, err := web.UserWith(r, TubeRoles...)
	if err != nil {
		return err
	}
	b, err := h.svc.Batch(r.Context(), r.PathValue("code"))
	if err != nil {
		return err
	}
	h.shell.Render(w, r, "screening_batch", batchPage{Batch: b,
		CanReceive: b.State == BatchInTransit && p.HasAny(ReceiveRoles...) && p.InstitutionID == b.LabID})
	return nil
}

// BatchReceiveSubmit receives a batch from its page:
// POST /screening/batches/{code}/receive.
func (h *Handlers) BatchReceiveSubmit(w http.ResponseWriter, r *http.Request) error {
	b, err := h.svc.ReceiveBatch(r.Context(), r.PathValue("code"))
	if err != nil {
		return err
	}
	http.Redirect(w, r, "/screening/batches/"+url.PathEscape(b.Code)+"?notice=screening.batch_received", http.StatusSeeOther)
	return nil
}

// positivesPage is the data of screening_tube_positives.
type positivesPage struct {
	Items      []PositiveTube
	Campaigns  []Campaign
	CampaignID int64
	Reported   string
	Next       string
	Back       string // this page's URL, for the report buttons
	Now        time.Time
}

// PositivesPage is the CDC's list of positive and suspicious tubes with
// their report deadlines: GET /screening/positives.
func (h *Handlers) PositivesPage(w http.ResponseWriter, r *http.Request) error {
	if _, err := web.UserWith(r, ReportRoles...); err != nil {
		return err
	}
	v := r.URL.Query()
	d := positivesPage{Reported: v.Get("reported"), Now: h.svc.now(),
		Back: pageURL("/screening/positives", v, "campaign_id", "reported", "limit", "cursor")}
	if s := v.Get("campaign_id"); s != "" {
		d.CampaignID, _ = strconv.ParseInt(s, 10, 64)
	}
	var err error
	if d.Campaigns, _, err = h.svc.Campaigns(r.Context(), CampaignQuery{Limit: 200}); err != nil {
		return err
	}
	limit, err := web.Limit(v, 100, 500)
	if err == nil {
		var next string
		d.Items, next, err = h.svc.PositiveTubes(r.Context(), PositiveQuery{CampaignID: d.CampaignID, Reported: d.Reported, Cursor: v.Get("cursor"), Limit: limit})
		if next != "" {
			nv := url.Values{}
			for _, k := range []string{"campaign_id", "reported", "limit"} {
				if s := v.Get(k); s != "" {
					nv.Set(k, s)
				}
			}
			nv.Set("cursor", next)
			d.Next = "/screening/positives?" + nv.Encode()
		}
	}
	if err != nil {
		h.shell.RenderForm(w, r, "screening_tube_positives", d, err)
		return nil
	}
	h.shell.Render(w, r, "screening_tube_positives", d)
	return nil
}
