package screening

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"slices"
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

// maxPlanBody bounds the JSON bodies of campaigns, points and slots.
const maxPlanBody = 64 << 10

// formTime is how a datetime-local input sends a time (in the bureau's zone).
const formTime = "2006-01-02T15:04"

// parseWhen reads a time: RFC 3339, or from a form (loc not nil) also a
// datetime-local value in loc. An empty string is the zero time, for the
// caller's "required". The API takes RFC 3339 only, so a time never means
// a zone the client did not name.
func parseWhen(s string, loc *time.Location) (time.Time, bool) {
	s = strings.TrimSpace(s)
	if s == "" {
		return time.Time{}, true
	}
	if t, err := time.Parse(time.RFC3339, s); err == nil {
		return t.UTC(), true
	}
	if loc == nil {
		return time.Time{}, false
	}
	for _, layout := range []string{formTime, "2006-01-02 15:04", "2006-01-02T15:04:05"} {
		if t, err := time.ParseInLocation(layout, s, loc); err == nil {
			return t.UTC(), true
		}
	}
	return time.Time{}, false
}

// timeField is a time input field: its name, what was sent, where it goes.
type timeField struct {
	name, raw string
	dst       *time.Time
}

// parseTimes parses time fields into their destinations, naming each
// unparsable one.
func parseTimes(problems *apperr.Problems, loc *time.Location, fields ...timeField) {
	for _, f := range fields {
		t, ok := parseWhen(f.raw, loc)
		if !ok {
			problems.Add(f.name, "campaign.time_invalid", "use a date and time like 2025-06-15T08:00:00+08:00")
		}
		*f.dst = t
	}
}

// campaignRequest is the body of POST /api/v1/campaigns and the campaign form.
type campaignRequest struct {
	Name         string   `json:"name"`
	Pathogen     string   `json:"pathogen"`
	RegionCodes  []string `json:"region_codes"`
	PoolSize     int      `json:"pool_size"`
	StartsAt     string   `json:"starts_at"`
	EndsAt       string   `json:"ends_at"`
	ResultsDueAt string   `json:"results_due_at"`
}

// newCampaign converts a request, naming the unparsable times.
func (req campaignRequest) newCampaign(loc *time.Location) (NewCampaign, apperr.Problems) {
	var problems apperr.Problems
	nc := NewCampaign{Name: req.Name, Pathogen: Pathogen(req.Pathogen), RegionCodes: req.RegionCodes, PoolSize: req.PoolSize}
	parseTimes(&problems, loc, timeField{"starts_at", req.StartsAt, &nc.StartsAt}, timeField{"ends_at", req.EndsAt, &nc.EndsAt},
		timeField{"results_due_at", req.ResultsDueAt, &nc.ResultsDueAt})
	return nc, problems
}

// listOf is a page of a list API.
type listOf[T any] struct {
	Items      []T    `json:"items"`
	NextCursor string `json:"next_cursor"`
}

func pageOf[T any](items []T, next string) listOf[T] {
	if items == nil {
		items = []T{}
	}
	return listOf[T]{Items: items, NextCursor: next}
}

// APICampaignCreate starts a campaign: POST /api/v1/campaigns.
func (h *Handlers) APICampaignCreate(w http.ResponseWriter, r *http.Request) error {
	if _, err := web.UserWith(r, PlanRoles...); err != nil {
		return err
	}
	var req campaignRequest
	if err := web.DecodeJSON(w, r, &req, maxPlanBody); err != nil {
		return err
	}
	nc, problems := req.newCampaign(nil)
	c, err := h.svc.createCampaign(r.Context(), nc, problems)
	if err != nil {
		return err
	}
	w.Header().Set("Location", "/api/v1/campaigns/"+strconv.FormatInt(c.ID, 10))
	web.WriteJSON(w, http.StatusCreated, c)
	return nil
}

// APICampaigns lists the campaigns visible to the caller: GET /api/v1/campaigns.
func (h *Handlers) APICampaigns(w http.ResponseWriter, r *http.Request) error {
	v := r.URL.Query()
	limit, err := web.Limit(v, 50, 200)
	if err != nil {
		return err
	}
	items, next, err := h.svc.Campaigns(r.Context(), CampaignQuery{State: v.Get("state"), Cursor: v.Get("cursor"), Limit: limit})
	if err != nil {
		return err
	}
	web.WriteJSON(w, http.StatusOK, pageOf(items, next))
	return nil
}

// APICampaign returns one campaign: GET /api/v1/campaigns/{id}.
func (h *Handlers) APICampaign(w http.ResponseWriter, r *http.Request) error {
	id, err := web.PathID(r, "id")
	if err != nil {
		return err
	}
	c, err := h.svc.Campaign(r.Context(), id)
	if err != nil {
		return err
	}
	web.WriteJSON(w, http.StatusOK, c)
	return nil
}

// APICampaignClose closes a campaign: POST /api/v1/campaigns/{id}/close.
func (h *Handlers) APICampaignClose(w http.ResponseWriter, r *http.Request) error {
	id, err := web.PathID(r, "id")
	if err != nil {
		return err
	}
	c, err := h.svc.CloseCampaign(r.Context(), id)
	if err != nil {
		return err
	}
	web.WriteJSON(w, http.StatusOK, c)
	return nil
}

// APICoverage returns a campaign's coverage: GET /api/v1/campaigns/{id}/coverage.
func (h *Handlers) APICoverage(w http.ResponseWriter, r *http.Request) error {
	id, err := web.PathID(r, "id")
	if err != nil {
		return err
	}
	cov, err := h.svc.Coverage(r.Context(), id, r.URL.Query().Get("region_code"))
	if err != nil {
		return err
	}
	web.WriteJSON(w, http.StatusOK, cov)
	return nil
}

// APIPlan returns a campaign's planning figures: GET /api/v1/campaigns/{id}/plan.
func (h *Handlers) APIPlan(w http.ResponseWriter, r *http.Request) error {
	id, err := web.PathID(r, "id")
	if err != nil {
		return err
	}
	plan, err := h.svc.Plan(r.Context(), id, r.URL.Query().Get("region_code"))
	if err != nil {
		return err
	}
	web.WriteJSON(w, http.StatusOK, plan)
	return nil
}

// notSampledQuery reads the not-sampled list's query parameters.
func notSampledQuery(v url.Values) (NotSampledQuery, error) {
	limit, err := web.Limit(v, 50, 500)
	if err != nil {
		return NotSampledQuery{}, err
	}
	q := NotSampledQuery{RegionCode: v.Get("region_code"), Limit: limit}
	if err := web.DecodeCursor(v.Get("cursor"), &q.Cursor); err != nil {
		return NotSampledQuery{}, err
	}
	return q, nil
}

// APINotSampled returns a page of the not-sampled list, masked:
// GET /api/v1/campaigns/{id}/not-sampled.
func (h *Handlers) APINotSampled(w http.ResponseWriter, r *http.Request) error {
	id, err := web.PathID(r, "id")
	if err != nil {
		return err
	}
	q, err := notSampledQuery(r.URL.Query())
	if err != nil {
		return err
	}
	items, next, err := h.svc.NotSampled(r.Context(), id, q)
	if err != nil {
		return err
	}
	views := make([]people.PersonView, len(items))
	for i, p := range items {
		views[i] = p.Masked()
	}
	cursor := ""
	if !next.IsZero() {
		cursor = web.EncodeCursor(next)
	}
	web.WriteJSON(w, http.StatusOK, pageOf(views, cursor))
	return nil
}

// NotSampledExport downloads the not-sampled list, masked, as CSV or .xlsx:
// the page's export links and GET /api/v1/campaigns/{id}/not-sampled/export.
func (h *Handlers) NotSampledExport(w http.ResponseWriter, r *http.Request) error {
	if _, err := web.UserWith(r, FollowRoles...); err != nil {
		return err
	}
	id, err := web.PathID(r, "id")
	if err != nil {
		return err
	}
	q := NotSampledQuery{RegionCode: r.URL.Query().Get("region_code")}
	lang := locale.FromRequest(r)
	t := func(key string) string { return h.shell.Catalog.T(lang, key) }
	cols := []tabular.Column{
		{Header: t("people.region_code")},
		{Header: t("people.region")},
		{Header: t("people.name")},
		{Header: t("people.id_number")},
		{Header: t("people.sex")},
		{Header: t("people.age"), Kind: tabular.Number},
		{Header: t("people.phone")},
		{Header: t("people.address")},
		{Header: t("people.tags")},
	}
	return h.shell.Export(w, r, "not-sampled", t("screening.coverage.not_sampled_list"), cols, func(f tabular.Format, write func([]any) error) error {
		return h.svc.ExportNotSampled(r.Context(), id, q, string(f), func(p people.Person) error {
			v := p.Masked()
			var age any
			if v.Age != nil {
				age = *v.Age
			}
			phone := v.Phone
			if v.NoPhone {
				phone = t("people.no_phone")
			}
			sex := ""
			if v.Sex != people.SexUnknown {
				sex = t("people.sex." + string(v.Sex))
			}
			tags := make([]string, len(v.Tags))
			for i, tag := range v.Tags {
				tags[i] = t("people.tag." + string(tag))
			}
			return write([]any{v.RegionCode, v.RegionName, v.Name, v.IDNumber, sex, age, phone, v.Address, strings.Join(tags, "、")})
		})
	})
}

// pointRequest is the body of POST /api/v1/sampling-points.
type pointRequest struct {
	Name            string `json:"name"`
	RegionCode      string `json:"region_code"`
	CampaignID      int64  `json:"campaign_id"`
	InstitutionID   int64  `json:"institution_id"`
	Address         string `json:"address"`
	Opens           string `json:"opens"`
	Closes          string `json:"closes"`
	CapacityPerHour int    `json:"capacity_per_hour"`
	Samplers        int    `json:"samplers"`
}

func (req pointRequest) newPoint() NewSamplingPoint {
	return NewSamplingPoint{CampaignID: req.CampaignID, InstitutionID: req.InstitutionID, Name: req.Name, RegionCode: req.RegionCode,
		Address: req.Address, Opens: req.Opens, Closes: req.Closes, CapacityPerHour: req.CapacityPerHour, Samplers: req.Samplers}
}

// APIPointCreate adds a sampling point to a campaign: POST /api/v1/sampling-points.
func (h *Handlers) APIPointCreate(w http.ResponseWriter, r *http.Request) error {
	if _, err := web.UserWith(r, PlanRoles...); err != nil {
		return err
	}
	var req pointRequest
	if err := web.DecodeJSON(w, r, &req, maxPlanBody); err != nil {
		return err
	}
	sp, err := h.svc.CreateSamplingPoint(r.Context(), req.newPoint())
	if err != nil {
		return err
	}
	w.Header().Set("Location", "/api/v1/sampling-points/"+strconv.FormatInt(sp.ID, 10))
	web.WriteJSON(w, http.StatusCreated, sp)
	return nil
}

// queryID reads an optional positive id from the query; 0 when absent.
func queryID(v url.Values, name string) (int64, error) {
	s := v.Get(name)
	if s == "" {
		return 0, nil
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil || n <= 0 {
		return 0, apperr.Field(name, "id.invalid", "must be a positive whole number")
	}
	return n, nil
}

// APIPoints lists the sampling points in the caller's scope:
// GET /api/v1/sampling-points?campaign_id=.
func (h *Handlers) APIPoints(w http.ResponseWriter, r *http.Request) error {
	v := r.URL.Query()
	campaignID, err := queryID(v, "campaign_id")
	if err != nil {
		return err
	}
	limit, err := web.Limit(v, 200, 1000)
	if err != nil {
		return err
	}
	items, next, err := h.svc.SamplingPoints(r.Context(), PointQuery{CampaignID: campaignID, RegionCode: v.Get("region_code"),
		Cursor: v.Get("cursor"), Limit: limit})
	if err != nil {
		return err
	}
	web.WriteJSON(w, http.StatusOK, pageOf(items, next))
	return nil
}

// APIPoint returns one sampling point: GET /api/v1/sampling-points/{id}.
func (h *Handlers) APIPoint(w http.ResponseWriter, r *http.Request) error {
	id, err := web.PathID(r, "id")
	if err != nil {
		return err
	}
	sp, err := h.svc.SamplingPoint(r.Context(), id)
	if err != nil {
		return err
	}
	web.WriteJSON(w, http.StatusOK, sp)
	return nil
}

// slotRequest is the body of POST /api/v1/campaigns/{id}/slots and the slot form.
type slotRequest struct {
	SamplingPointID int64  `json:"sampling_point_id"`
	RegionCode      string `json:"region_code"`
	Label           string `json:"label"`
	StartsAt        string `json:"starts_at"`
	EndsAt          string `json:"ends_at"`
}

func (req slotRequest) newSlot(loc *time.Location) (NewSlot, apperr.Problems) {
	var problems apperr.Problems
	ns := NewSlot{SamplingPointID: req.SamplingPointID, RegionCode: req.RegionCode, Label: req.Label}
	parseTimes(&problems, loc, timeField{"starts_at", req.StartsAt, &ns.StartsAt}, timeField{"ends_at", req.EndsAt, &ns.EndsAt})
	return ns, problems
}

// APISlotCreate calls a village to a point: POST /api/v1/campaigns/{id}/slots.
func (h *Handlers) APISlotCreate(w http.ResponseWriter, r *http.Request) error {
	if _, err := web.UserWith(r, PlanRoles...); err != nil {
		return err
	}
	var req slotRequest
	if err := web.DecodeJSON(w, r, &req, maxPlanBody); err != nil {
		return err
	}
	id, err := web.PathID(r, "id")
	if err != nil {
		return err
	}
	ns, problems := req.newSlot(nil)
	sl, err := h.svc.createSlot(r.Context(), id, ns, problems)
	if err != nil {
		return err
	}
	web.WriteJSON(w, http.StatusCreated, sl)
	return nil
}

// APISlots lists a campaign's slots: GET /api/v1/campaigns/{id}/slots.
func (h *Handlers) APISlots(w http.ResponseWriter, r *http.Request) error {
	id, err := web.PathID(r, "id")
	if err != nil {
		return err
	}
	v := r.URL.Query()
	pointID, err := queryID(v, "sampling_point_id")
	if err != nil {
		return err
	}
	limit, err := web.Limit(v, 500, 1000)
	if err != nil {
		return err
	}
	items, next, err := h.svc.Slots(r.Context(), id, SlotQuery{SamplingPointID: pointID, RegionCode: v.Get("region_code"),
		Cursor: v.Get("cursor"), Limit: limit})
	if err != nil {
		return err
	}
	web.WriteJSON(w, http.StatusOK, pageOf(items, next))
	return nil
}

// APISlotDelete removes a slot: DELETE /api/v1/slots/{id}.
func (h *Handlers) APISlotDelete(w http.ResponseWriter, r *http.Request) error {
	id, err := web.PathID(r, "id")
	if err != nil {
		return err
	}
	if _, err := h.svc.DeleteSlot(r.Context(), id); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// --- pages

// campaignListPage is the data of screening_campaign_list.
type campaignListPage struct {
	Items   []Campaign
	State   string
	Next    string // URL of the next page
	CanPlan bool
	Follows bool // may open the dashboards
}

// CampaignList shows the campaigns: GET /screening/campaigns.
func (h *Handlers) CampaignList(w http.ResponseWriter, r *http.Request) error {
	p, err := web.UserWith(r, ViewRoles...)
	if err != nil {
		return err
	}
	v := r.URL.Query()
	data := campaignListPage{State: v.Get("state"), CanPlan: p.HasAny(PlanRoles...), Follows: p.HasAny(FollowRoles...)}
	items, next, err := h.svc.Campaigns(r.Context(), CampaignQuery{State: data.State, Cursor: v.Get("cursor")})
	if err != nil {
		return err
	}
	data.Items = items
	if next != "" {
		data.Next = "/screening/campaigns?" + url.Values{"state": {data.State}, "cursor": {next}}.Encode()
	}
	h.shell.Render(w, r, "screening_campaign_list", data)
	return nil
}

// regionChoice is a region offered as a checkbox.
type regionChoice struct {
	Code, Name string
	Checked    bool
}

// campaignFormPage is the data of screening_campaign_new.
type campaignFormPage struct {
	Form      campaignRequest
	Pathogens []Pathogen
	PoolSizes []int
	Choices   []regionChoice // the children of the user's region
	Region    regions.Picker // one more region, at any depth
}

func (h *Handlers) campaignForm(p *scope.Principal, req campaignRequest, picked string) campaignFormPage {
	data := campaignFormPage{Form: req, Pathogens: Pathogens, PoolSizes: PoolSizes, Region: h.svc.tree.Picker(p, picked)}
	for _, d := range h.svc.tree.Children(p.RegionCode) {
		data.Choices = append(data.Choices, regionChoice{Code: d.Code, Name: d.Name, Checked: slices.Contains(req.RegionCodes, d.Code)})
	}
	return data
}

// CampaignNew shows the campaign form: GET /screening/campaigns/new.
func (h *Handlers) CampaignNew(w http.ResponseWriter, r *http.Request) error {
	p, err := web.UserWith(r, PlanRoles...)
	if err != nil {
		return err
	}
	loc := h.shell.Location(r.Context())
	start := h.svc.now().In(loc).Truncate(time.Hour).Add(time.Hour)
	req := campaignRequest{Pathogen: string(SARSCoV2), PoolSize: 10, StartsAt: start.Format(formTime), EndsAt: start.Add(24 * time.Hour).Format(formTime)}
	h.shell.Render(w, r, "screening_campaign_new", h.campaignForm(p, req, ""))
	return nil
}

// CampaignCreate starts the campaign of the form: POST /screening/campaigns.
func (h *Handlers) CampaignCreate(w http.ResponseWriter, r *http.Request) error {
	p, err := web.UserWith(r, PlanRoles...)
	if err != nil {
		return err
	}
	if err := web.ParseForm(w, r, 0); err != nil {
		return err
	}
	f := r.PostForm
	req := campaignRequest{Name: f.Get("name"), Pathogen: f.Get("pathogen"), StartsAt: f.Get("starts_at"), EndsAt: f.Get("ends_at"),
		ResultsDueAt: f.Get("results_due_at")}
	for _, code := range f["region_codes"] {
		if code = strings.TrimSpace(code); code != "" && !slices.Contains(req.RegionCodes, code) {
			req.RegionCodes = append(req.RegionCodes, code)
		}
	}
	picked := strings.TrimSpace(f.Get("region_code"))
	if picked != "" && !slices.Contains(req.RegionCodes, picked) {
		req.RegionCodes = append(req.RegionCodes, picked)
	}
	var problems apperr.Problems
	if req.PoolSize, err = strconv.Atoi(f.Get("pool_size")); err != nil {
		problems.Add("pool_size", "campaign.pool_size", "the pool size must be 1, 5, 10 or 20")
	}
	nc, timeProblems := req.newCampaign(h.shell.Location(r.Context()))
	c, err := h.svc.createCampaign(r.Context(), nc, append(problems, timeProblems...))
	if err != nil {
		h.shell.RenderForm(w, r, "screening_campaign_new", h.campaignForm(p, req, picked), err)
		return nil
	}
	http.Redirect(w, r, "/screening/campaigns/"+strconv.FormatInt(c.ID, 10)+"?notice=screening.campaign_created", http.StatusSeeOther)
	return nil
}

// crumb is one step of a region breadcrumb.
type crumb struct{ Code, Name string }

// crumbs returns the regions from top down to region, for drilling back up.
func (h *Handlers) crumbs(top, region string) []crumb {
	var out []crumb
	for _, d := range h.svc.tree.Ancestors(region) {
		if len(d.Code) >= len(top) {
			out = append(out, crumb{d.Code, d.Name})
		}
	}
	name := h.svc.placeName(region)
	if d, ok := h.svc.tree.Lookup(region); ok {
		name = d.Name
	}
	return append(out, crumb{region, name})
}

// dashboardPage is the data of screening_campaign_dashboard.
type dashboardPage struct {
	Dashboard
	Crumbs  []crumb
	Chart   string // the turnaround chart's ECharts option
	Manages bool
	CanPlan bool
}

// CampaignDashboard shows a campaign's figures in a region:
// GET /screening/campaigns/{id}?region_code=.
func (h *Handlers) CampaignDashboard(w http.ResponseWriter, r *http.Request) error {
	p, err := web.UserWith(r, FollowRoles...)
	if err != nil {
		return err
	}
	id, err := web.PathID(r, "id")
	if err != nil {
		return err
	}
	d, err := h.svc.Dashboard(r.Context(), id, r.URL.Query().Get("region_code"))
	if err != nil {
		return err
	}
	top, _ := focusRegion(p, d.Campaign, "")
	chart, err := h.turnaroundChart(locale.FromRequest(r), d.Coverage.Turnaround)
	if err != nil {
		return err
	}
	h.shell.Render(w, r, "screening_campaign_dashboard", dashboardPage{Dashboard: d, Crumbs: h.crumbs(top, d.Coverage.RegionCode),
		Chart: chart, Manages: Manages(p, d.Campaign) && !d.Campaign.Closed(), CanPlan: p.HasAny(PlanRoles...)})
	return nil
}

// turnaroundChart returns the ECharts option of the turnaround bar chart,
// "" when no tube has a result yet.
func (h *Handlers) turnaroundChart(lang locale.Lang, buckets []TurnaroundBucket) (string, error) {
	var total int64
	labels := make([]string, len(buckets))
	values := make([]int64, len(buckets))
	for i, b := range buckets {
		labels[i] = h.shell.Catalog.T(lang, "screening.turnaround."+strconv.Itoa(b.Hours))
		values[i] = b.Tubes
		total += b.Tubes
	}
	if total == 0 {
		return "", nil
	}
	option := map[string]any{
		"tooltip": map[string]any{},
		"grid":    map[string]any{"left": 48, "right": 16, "top": 24, "bottom": 40},
		"xAxis":   map[string]any{"type": "category", "data": labels},
		"yAxis":   map[string]any{"type": "value", "minInterval": 1},
		"series":  []any{map[string]any{"type": "bar", "name": h.shell.Catalog.T(lang, "screening.turnaround.tubes"), "data": values}},
	}
	b, err := json.Marshal(option)
	if err != nil {
		return "", fmt.Errorf("screening: turnaround chart: %w", err)
	}
	return string(b), nil
}

// CampaignClose closes a campaign from its dashboard: POST /screening/campaigns/{id}/close.
func (h *Handlers) CampaignClose(w http.ResponseWriter, r *http.Request) error {
	if _, err := web.UserWith(r, PlanRoles...); err != nil {
		return err
	}
	id, err := web.PathID(r, "id")
	if err != nil {
		return err
	}
	if _, err := h.svc.CloseCampaign(r.Context(), id); err != nil {
		return err
	}
	http.Redirect(w, r, "/screening/campaigns/"+strconv.FormatInt(id, 10)+"?notice=screening.campaign_closed", http.StatusSeeOther)
	return nil
}

// pointListPage is the data of screening_point_list.
type pointListPage struct {
	Campaign Campaign
	Points   []SamplingPoint
	Next     string
	CanPlan  bool
	Form     pointRequest
	Region   regions.Picker
}

// pointList fills a point list page for campaign id.
func (h *Handlers) pointList(r *http.Request, p *scope.Principal, id int64, form pointRequest) (pointListPage, error) {
	c, err := h.svc.Campaign(r.Context(), id)
	if err != nil {
		return pointListPage{}, err
	}
	points, next, err := h.svc.SamplingPoints(r.Context(), PointQuery{CampaignID: c.ID, Cursor: r.URL.Query().Get("cursor")})
	if err != nil {
		return pointListPage{}, err
	}
	data := pointListPage{Campaign: c, Points: points, CanPlan: p.HasAny(PlanRoles...) && !c.Closed(), Form: form,
		Region: h.svc.tree.Picker(p, form.RegionCode)}
	if next != "" {
		data.Next = fmt.Sprintf("/screening/campaigns/%d/points?cursor=%s", c.ID, url.QueryEscape(next))
	}
	return data, nil
}

// PointList shows a campaign's points and the form to add one:
// GET /screening/campaigns/{id}/points.
func (h *Handlers) PointList(w http.ResponseWriter, r *http.Request) error {
	p, err := web.UserWith(r, ViewRoles...)
	if err != nil {
		return err
	}
	id, err := web.PathID(r, "id")
	if err != nil {
		return err
	}
	data, err := h.pointList(r, p, id, pointRequest{Opens: "07:00", Closes: "21:00"})
	if err != nil {
		return err
	}
	h.shell.Render(w, r, "screening_point_list", data)
	return nil
}

// formInt reads a whole-number form field; "" is 0.
func formInt(problems *apperr.Problems, f url.Values, name, code string, maxValue int) int {
	s := strings.TrimSpace(f.Get(name))
	if s == "" {
		return 0
	}
	n, err := strconv.Atoi(s)
	if err != nil {
		problems.Add(name, code, "a whole number from 0 to %v", maxValue)
	}
	return n
}

// PointCreate adds the point of the form: POST /screening/campaigns/{id}/points.
func (h *Handlers) PointCreate(w http.ResponseWriter, r *http.Request) error {
	p, err := web.UserWith(r, PlanRoles...)
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
	f := r.PostForm
	var problems apperr.Problems
	req := pointRequest{CampaignID: id, Name: f.Get("name"), RegionCode: f.Get("region_code"), Address: f.Get("address"),
		Opens: f.Get("opens"), Closes: f.Get("closes"),
		CapacityPerHour: formInt(&problems, f, "capacity_per_hour", "point.capacity_range", maxCapacity),
		Samplers:        formInt(&problems, f, "samplers", "point.samplers_range", maxSamplers)}
	if _, err = h.svc.createSamplingPoint(r.Context(), req.newPoint(), problems); err != nil {
		data, derr := h.pointList(r, p, id, req)
		if derr != nil {
			return derr
		}
		h.shell.RenderForm(w, r, "screening_point_list", data, err)
		return nil
	}
	http.Redirect(w, r, fmt.Sprintf("/screening/campaigns/%d/points?notice=screening.point_created", id), http.StatusSeeOther)
	return nil
}

// planPage is the data of screening_plan.
type planPage struct {
	Plan
	Crumbs []crumb
}

// PlanPage shows the planning figures: GET /screening/campaigns/{id}/plan?region_code=.
func (h *Handlers) PlanPage(w http.ResponseWriter, r *http.Request) error {
	p, err := web.UserWith(r, FollowRoles...)
	if err != nil {
		return err
	}
	id, err := web.PathID(r, "id")
	if err != nil {
		return err
	}
	plan, err := h.svc.Plan(r.Context(), id, r.URL.Query().Get("region_code"))
	if err != nil {
		return err
	}
	top, _ := focusRegion(p, plan.Campaign, "")
	h.shell.Render(w, r, "screening_plan", planPage{Plan: plan, Crumbs: h.crumbs(top, plan.RegionCode)})
	return nil
}

// slotsPage is the data of screening_plan_slots.
type slotsPage struct {
	Campaign Campaign
	Points   []SamplingPoint
	Slots    []Slot
	Next     string
	CanPlan  bool
	Form     slotRequest
	Region   regions.Picker
}

// slotsList fills the slots page of campaign id.
func (h *Handlers) slotsList(r *http.Request, p *scope.Principal, id int64, form slotRequest) (slotsPage, error) {
	c, err := h.svc.Campaign(r.Context(), id)
	if err != nil {
		return slotsPage{}, err
	}
	v := r.URL.Query()
	pointID, err := queryID(v, "sampling_point_id")
	if err != nil {
		return slotsPage{}, err
	}
	slots, next, err := h.svc.Slots(r.Context(), c.ID, SlotQuery{SamplingPointID: pointID, RegionCode: v.Get("region_code"), Cursor: v.Get("cursor")})
	if err != nil {
		return slotsPage{}, err
	}
	points, _, err := h.svc.SamplingPoints(r.Context(), PointQuery{CampaignID: c.ID, Limit: 1000})
	if err != nil {
		return slotsPage{}, err
	}
	if form.SamplingPointID == 0 {
		form.SamplingPointID = pointID
	}
	data := slotsPage{Campaign: c, Points: points, Slots: slots, CanPlan: p.HasAny(PlanRoles...) && !c.Closed(), Form: form,
		Region: h.svc.tree.Picker(p, form.RegionCode)}
	if next != "" {
		nv := url.Values{"cursor": {next}}
		for _, k := range []string{"sampling_point_id", "region_code"} {
			if s := v.Get(k); s != "" {
				nv.Set(k, s)
			}
		}
		data.Next = fmt.Sprintf("/screening/campaigns/%d/slots?%s", c.ID, nv.Encode())
	}
	return data, nil
}

// SlotList shows a campaign's slots and the form to add one:
// GET /screening/campaigns/{id}/slots.
func (h *Handlers) SlotList(w http.ResponseWriter, r *http.Request) error {
	p, err := web.UserWith(r, ViewRoles...)
	if err != nil {
		return err
	}
	id, err := web.PathID(r, "id")
	if err != nil {
		return err
	}
	data, err := h.slotsList(r, p, id, slotRequest{})
	if err != nil {
		return err
	}
	if data.Form.StartsAt == "" {
		loc := h.shell.Location(r.Context())
		start := data.Campaign.StartsAt
		if now := h.svc.now(); now.After(start) {
			start = now.Truncate(time.Hour).Add(time.Hour)
		}
		data.Form.StartsAt = start.In(loc).Format(formTime)
		data.Form.EndsAt = start.Add(time.Hour).In(loc).Format(formTime)
	}
	h.shell.Render(w, r, "screening_plan_slots", data)
	return nil
}

// SlotCreate adds the slot of the form: POST /screening/campaigns/{id}/slots.
func (h *Handlers) SlotCreate(w http.ResponseWriter, r *http.Request) error {
	p, err := web.UserWith(r, PlanRoles...)
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
	f := r.PostForm
	var problems apperr.Problems
	req := slotRequest{RegionCode: f.Get("region_code"), Label: f.Get("label"), StartsAt: f.Get("starts_at"), EndsAt: f.Get("ends_at")}
	if s := strings.TrimSpace(f.Get("sampling_point_id")); s != "" {
		if req.SamplingPointID, err = strconv.ParseInt(s, 10, 64); err != nil {
			problems.Add("sampling_point_id", "sampling_point.unknown", "no such sampling point")
		}
	}
	ns, timeProblems := req.newSlot(h.shell.Location(r.Context()))
	_, err = h.svc.createSlot(r.Context(), id, ns, append(problems, timeProblems...))
	if err != nil {
		data, derr := h.slotsList(r, p, id, req)
		if derr != nil {
			return derr
		}
		h.shell.RenderForm(w, r, "screening_plan_slots", data, err)
		return nil
	}
	http.Redirect(w, r, fmt.Sprintf("/screening/campaigns/%d/slots?sampling_point_id=%d&notice=screening.slot_created", id, req.SamplingPointID), http.StatusSeeOther)
	return nil
}

// SlotDelete removes a slot from the slots page: POST /screening/slots/{id}/delete.
func (h *Handlers) SlotDelete(w http.ResponseWriter, r *http.Request) error {
	if _, err := web.UserWith(r, PlanRoles...); err != nil {
		return err
	}
	id, err := web.PathID(r, "id")
	if err != nil {
		return err
	}
	sl, err := h.svc.DeleteSlot(r.Context(), id)
	if err != nil {
		return err
	}
	http.Redirect(w, r, fmt.Sprintf("/screening/campaigns/%d/slots?sampling_point_id=%d&notice=screening.slot_deleted", sl.CampaignID, sl.SamplingPointID), http.StatusSeeOther)
	return nil
}

// noticePage is the data of screening_point_notice.
type noticePage struct {
	Notice
	Days []noticeDay
}

// noticeDay is one day of a notice's slots, in the bureau's zone.
type noticeDay struct {
	Date  string
	Slots []noticeSlot
}

// noticeSlot is a slot with its window as a resident reads it: the hours
// of the day ("09:00", "10:30"; the end dated when on a later day).
type noticeSlot struct {
	Slot
	From, Until string
}

// PointNotice shows a point's printable notice: GET /screening/points/{id}/notice?region_code=.
func (h *Handlers) PointNotice(w http.ResponseWriter, r *http.Request) error {
	if _, err := web.UserWith(r, ViewRoles...); err != nil {
		return err
	}
	id, err := web.PathID(r, "id")
	if err != nil {
		return err
	}
	n, err := h.svc.PointNotice(r.Context(), id, r.URL.Query().Get("region_code"))
	if err != nil {
		return err
	}
	loc := h.shell.Location(r.Context())
	data := noticePage{Notice: n}
	for _, sl := range n.Slots {
		day := sl.StartsAt.In(loc).Format("2006-01-02")
		if len(data.Days) == 0 || data.Days[len(data.Days)-1].Date != day {
			data.Days = append(data.Days, noticeDay{Date: day})
		}
		until := sl.EndsAt.In(loc).Format("15:04")
		if end := sl.EndsAt.In(loc); end.Format("2006-01-02") != day && !(end.Hour() == 0 && end.Minute() == 0 && end.Sub(sl.StartsAt) <= 24*time.Hour) {
			until = end.Format("2006-01-02 15:04")
		}
		last := &data.Days[len(data.Days)-1]
		last.Slots = append(last.Slots, noticeSlot{Slot: sl, From: sl.StartsAt.In(loc).Format("15:04"), Until: until})
	}
	h.shell.Render(w, r, "screening_point_notice", data)
	return nil
}

// coveragePage is the data of screening_coverage.
type coveragePage struct {
	Campaign Campaign
	Coverage Coverage
	Crumbs   []crumb
	People   []people.PersonView
	Next     string // URL of the not-sampled list's next page
}

// CoveragePage shows a campaign's coverage in a region with its not-sampled
// list: GET /screening/campaigns/{id}/coverage?region_code=.
func (h *Handlers) CoveragePage(w http.ResponseWriter, r *http.Request) error {
	p, err := web.UserWith(r, FollowRoles...)
	if err != nil {
		return err
	}
	id, err := web.PathID(r, "id")
	if err != nil {
		return err
	}
	c, err := h.svc.Campaign(r.Context(), id)
	if err != nil {
		return err
	}
	v := r.URL.Query()
	cov, err := h.svc.Coverage(r.Context(), id, v.Get("region_code"))
	if err != nil {
		return err
	}
	q, err := notSampledQuery(v)
	if err != nil {
		return err
	}
	q.RegionCode = cov.RegionCode
	list, next, err := h.svc.NotSampled(r.Context(), id, q)
	if err != nil {
		return err
	}
	top, _ := focusRegion(p, c, "")
	data := coveragePage{Campaign: c, Coverage: cov, Crumbs: h.crumbs(top, cov.RegionCode)}
	for _, person := range list {
		data.People = append(data.People, person.Masked())
	}
	if !next.IsZero() {
		data.Next = fmt.Sprintf("/screening/campaigns/%d/coverage?%s", id,
			url.Values{"region_code": {cov.RegionCode}, "cursor": {web.EncodeCursor(next)}}.Encode())
	}
	h.shell.Render(w, r, "screening_coverage", data)
	return nil
}
