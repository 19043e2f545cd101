package server

import (
	"net/http"

	"github.com/shaobing/shaobing/internal/audit"
	"github.com/shaobing/shaobing/internal/auth"
	"github.com/shaobing/shaobing/internal/deadlines"
	"github.com/shaobing/shaobing/internal/people"
	"github.com/shaobing/shaobing/internal/regions"
	"github.com/shaobing/shaobing/internal/scope"
	"github.com/shaobing/shaobing/internal/screening"
	"github.com/shaobing/shaobing/internal/settings"
	"github.com/shaobing/shaobing/internal/web"
)

// navigation is the main menu; each entry shows only to the roles listed.
func navigation() []web.NavItem {
	return []web.NavItem{
		{Key: "nav.home", Path: "/"},
		{Key: "deadlines.nav", Path: "/inbox"},
		{Key: "screening.sampler.nav", Path: "/screening/sampler", Roles: screening.SamplerNav},
		{Key: "screening.campaigns.nav", Path: "/screening/campaigns", Roles: screening.ScreeningNav},
		{Key: "screening.handover.nav", Path: "/screening/handover", Roles: screening.SampleRoles},
		{Key: "screening.lab.nav", Path: "/screening/lab", Roles: screening.ResultRoles},
		{Key: "screening.tube.nav", Path: "/screening/tubes", Roles: screening.TubeRoles},
		{Key: "screening.recalls.nav", Path: "/screening/recalls", Roles: screening.FollowRoles},
		{Key: "screening.positives.nav", Path: "/screening/positives", Roles: screening.ReportRoles},
		{Key: "people.nav", Path: "/people", Roles: people.Roles},
		{Key: "nav.institutions", Path: "/institutions"},
		{Key: "nav.regions", Path: "/regions"},
		{Key: "nav.users", Path: "/users", Roles: []scope.Role{scope.BureauAdmin}},
		{Key: "nav.audit", Path: "/audit", Roles: []scope.Role{scope.BureauAdmin}},
		{Key: "settings.nav", Path: "/settings", Roles: []scope.Role{scope.BureauAdmin}},
		{Key: "nav.account", Path: "/account"},
	}
}

// templates lists every module's page templates.
func templates() []web.Templates {
	return []web.Templates{
		audit.Templates,
		auth.Templates,
		deadlines.Templates,
		settings.Templates,
		regions.Templates,
		people.Templates,
		screening.Templates,
	}
}

// routes lists every route of the application in one place.
func (s *Server) routes(mux *routeTable) {
	// Platform. Health, metrics and static files are bare: no shedding, no
	// session lookup, no audit context.
	mux.HandleBare("GET /healthz", http.HandlerFunc(s.healthz))
	mux.HandleBare("GET /readyz", http.HandlerFunc(s.readyz))
	mux.HandleBare("GET /metrics", s.metricsHandler())
	mux.HandleBare("GET /static/", s.shell.Assets.Handler())
	mux.HandleBare("GET /screening/sampler-sw.js", s.shell.Assets.File("sampler-sw.js"))
	mux.HandleFunc("GET /lang", s.setLanguage)
	mux.Handle("GET /api/v1/openapi.json", s.openapi)

	// Auth.
	mux.Handle("GET /login", s.shell.Page(s.auth.LoginPage))
	mux.Handle("POST /login", s.shell.Page(s.auth.LoginSubmit))
	mux.Handle("POST /logout", s.shell.Page(s.auth.LogoutSubmit))
	mux.Handle("GET /users", s.shell.Page(s.auth.UserList))
	mux.Handle("GET /users/new", s.shell.Page(s.auth.UserNew))
	mux.Handle("GET /users/export", s.shell.Page(s.auth.UserExport))
	mux.Handle("POST /users", s.shell.Page(s.auth.UserCreate))
	mux.Handle("GET /users/{id}", s.shell.Page(s.auth.UserDetail))
	mux.Handle("GET /users/{id}/edit", s.shell.Page(s.auth.UserEdit))
	mux.Handle("POST /users/{id}", s.shell.Page(s.auth.UserUpdate))
	mux.Handle("POST /users/{id}/disable", s.shell.Page(s.auth.UserDisable))
	mux.Handle("POST /users/{id}/enable", s.shell.Page(s.auth.UserEnable))
	mux.Handle("POST /users/{id}/password", s.shell.Page(s.auth.UserResetPassword))
	mux.Handle("POST /users/{id}/sessions/revoke", s.shell.Page(s.auth.UserSessionsRevoke))
	mux.Handle("GET /account", s.shell.Page(s.auth.Account))
	mux.Handle("POST /account/password", s.shell.Page(s.auth.AccountPassword))
	mux.Handle("POST /account/tokens", s.shell.Page(s.auth.TokenCreate))
	mux.Handle("POST /account/tokens/{id}/revoke", s.shell.Page(s.auth.TokenRevoke))
	mux.Handle("POST /account/sessions/{id}/revoke", s.shell.Page(s.auth.SessionRevoke))
	mux.Handle("POST /account/sessions/revoke-others", s.shell.Page(s.auth.SessionRevokeOthers))
	mux.Handle("GET /api/v1/users", s.shell.API(s.auth.APIUsers))
	mux.Handle("POST /api/v1/users", s.shell.API(s.auth.APIUserCreate))
	mux.Handle("GET /api/v1/users/{id}", s.shell.API(s.auth.APIUser))
	mux.Handle("PATCH /api/v1/users/{id}", s.shell.API(s.auth.APIUserUpdate))
	mux.Handle("GET /api/v1/me", s.shell.API(s.auth.APIMe))

	// Audit.
	mux.Handle("GET /audit", s.shell.Page(s.auditH.Page))
	mux.Handle("GET /audit/export", s.shell.Page(s.auditH.Export))
	mux.Handle("POST /audit/verify", s.shell.Page(s.auditH.VerifyPage))
	mux.Handle("GET /api/v1/audit", s.shell.API(s.auditH.API))
	mux.Handle("POST /api/v1/audit/verify", s.shell.API(s.auditH.VerifyAPI))

	// Deadlines and settings.
	mux.Handle("GET /{$}", s.shell.Page(s.deadlinesH.Home))
	mux.Handle("GET /inbox", s.shell.Page(s.deadlinesH.Inbox))
	mux.Handle("GET /inbox/export", s.shell.Page(s.deadlinesH.Export))
	mux.Handle("GET /inbox/{id}", s.shell.Page(s.deadlinesH.Detail))
	mux.Handle("GET /api/v1/deadlines", s.shell.API(s.deadlinesH.APIList))
	mux.Handle("GET /api/v1/deadlines/{id}", s.shell.API(s.deadlinesH.APIGet))
	mux.Handle("GET /settings", s.shell.Page(s.settingsH.Page))
	mux.Handle("POST /settings", s.shell.Page(s.zone.forgetting(s.settingsH.Save)))

	// Regions and institutions.
	mux.Handle("GET /institutions", s.shell.Page(s.regions.InstitutionList))
	mux.Handle("GET /institutions/new", s.shell.Page(s.regions.InstitutionNew))
	mux.Handle("POST /institutions", s.shell.Page(s.regions.InstitutionCreate))
	mux.Handle("GET /institutions/{id}", s.shell.Page(s.regions.InstitutionDetail))
	mux.Handle("GET /institutions/{id}/edit", s.shell.Page(s.regions.InstitutionEdit))
	mux.Handle("POST /institutions/{id}", s.shell.Page(s.regions.InstitutionUpdate))
	mux.Handle("POST /institutions/{id}/active", s.shell.Page(s.regions.InstitutionSetActive))
	mux.Handle("GET /regions", s.shell.Page(s.regions.RegionBrowse))
	mux.Handle("GET /regions/options", s.shell.Page(s.regions.RegionOptions))
	mux.Handle("GET /api/v1/institutions", s.shell.API(s.regions.APIInstitutionList))
	mux.Handle("POST /api/v1/institutions", s.shell.API(s.regions.APIInstitutionCreate))
	mux.Handle("GET /api/v1/institutions/{id}", s.shell.API(s.regions.APIInstitutionGet))
	mux.Handle("GET /api/v1/regions/{code}", s.shell.API(s.regions.APIRegion))

	// People.
	mux.Handle("GET /people", s.shell.Page(s.people.List))
	mux.Handle("GET /people/new", s.shell.Page(s.people.New))
	mux.Handle("POST /people/new", s.shell.Page(s.people.Create))
	mux.Handle("GET /people/import", s.shell.Page(s.people.ImportForm))
	mux.Handle("POST /people/import", s.shell.Page(s.people.Import))
	mux.Handle("GET /people/export", s.shell.Page(s.people.Export))
	mux.Handle("GET /people/{id}", s.shell.Page(s.people.Detail))
	mux.Handle("POST /people/{id}/unmask", s.shell.Page(s.people.Unmask))
	mux.Handle("GET /api/v1/people", s.shell.API(s.people.APISearch))
	mux.Handle("POST /api/v1/people", s.shell.API(s.people.APIRegister))
	mux.Handle("POST /api/v1/people/import", s.shell.API(s.people.APIImport))
	mux.Handle("GET /api/v1/people/export", s.shell.API(s.people.Export))
	mux.Handle("GET /api/v1/people/{id}", s.shell.API(s.people.APIGet))
	mux.Handle("POST /api/v1/people/{id}/unmask", s.shell.API(s.people.APIUnmask))

	// Mass screening: campaigns, sampling points, planning, time slots and coverage.
	mux.Handle("GET /screening/campaigns", s.shell.Page(s.screeningH.CampaignList))
	mux.Handle("GET /screening/campaigns/new", s.shell.Page(s.screeningH.CampaignNew))
	mux.Handle("POST /screening/campaigns", s.shell.Page(s.screeningH.CampaignCreate))
	mux.Handle("GET /screening/campaigns/{id}", s.shell.Page(s.screeningH.CampaignDashboard))
	mux.Handle("POST /screening/campaigns/{id}/close", s.shell.Page(s.screeningH.CampaignClose))
	mux.Handle("GET /screening/campaigns/{id}/points", s.shell.Page(s.screeningH.PointList))
	mux.Handle("POST /screening/campaigns/{id}/points", s.shell.Page(s.screeningH.PointCreate))
	mux.Handle("GET /screening/campaigns/{id}/plan", s.shell.Page(s.screeningH.PlanPage))
	mux.Handle("GET /screening/campaigns/{id}/slots", s.shell.Page(s.screeningH.SlotList))
	mux.Handle("POST /screening/campaigns/{id}/slots", s.shell.Page(s.screeningH.SlotCreate))
	mux.Handle("POST /screening/slots/{id}/delete", s.shell.Page(s.screeningH.SlotDelete))
	mux.Handle("GET /screening/points/{id}/notice", s.shell.Page(s.screeningH.PointNotice))
	mux.Handle("GET /screening/campaigns/{id}/coverage", s.shell.Page(s.screeningH.CoveragePage))
	mux.Handle("GET /screening/campaigns/{id}/not-sampled/export", s.shell.Page(s.screeningH.NotSampledExport))
	mux.Handle("GET /api/v1/campaigns", s.shell.API(s.screeningH.APICampaigns))
	mux.Handle("POST /api/v1/campaigns", s.shell.API(s.screeningH.APICampaignCreate))
	mux.Handle("GET /api/v1/campaigns/{id}", s.shell.API(s.screeningH.APICampaign))
	mux.Handle("POST /api/v1/campaigns/{id}/close", s.shell.API(s.screeningH.APICampaignClose))
	mux.Handle("GET /api/v1/campaigns/{id}/coverage", s.shell.API(s.screeningH.APICoverage))
	mux.Handle("GET /api/v1/campaigns/{id}/plan", s.shell.API(s.screeningH.APIPlan))
	mux.Handle("GET /api/v1/campaigns/{id}/not-sampled", s.shell.API(s.screeningH.APINotSampled))
	mux.Handle("GET /api/v1/campaigns/{id}/not-sampled/export", s.shell.API(s.screeningH.NotSampledExport))
	mux.Handle("GET /api/v1/campaigns/{id}/slots", s.shell.API(s.screeningH.APISlots))
	mux.Handle("POST /api/v1/campaigns/{id}/slots", s.shell.API(s.screeningH.APISlotCreate))
	mux.Handle("DELETE /api/v1/slots/{id}", s.shell.API(s.screeningH.APISlotDelete))
	mux.Handle("GET /api/v1/sampling-points", s.shell.API(s.screeningH.APIPoints))
	mux.Handle("POST /api/v1/sampling-points", s.shell.API(s.screeningH.APIPointCreate))
	mux.Handle("GET /api/v1/sampling-points/{id}", s.shell.API(s.screeningH.APIPoint))

	// Mass screening: tubes, handover, lab results, recalls and positive reports.
	mux.Handle("GET /screening/tubes", s.shell.Page(s.screeningH.TubeFind))
	mux.Handle("GET /screening/tubes/{code}", s.shell.Page(s.screeningH.TubePage))
	mux.Handle("POST /screening/tubes/{code}/seal", s.shell.Page(s.screeningH.TubeSealSubmit))
	mux.Handle("POST /screening/tubes/{code}/report", s.shell.Page(s.screeningH.TubeReportSubmit))
	mux.Handle("GET /screening/handover", s.shell.Page(s.screeningH.HandoverPage))
	mux.Handle("POST /screening/handover", s.shell.Page(s.screeningH.HandoverSubmit))
	mux.Handle("GET /screening/batches/{code}", s.shell.Page(s.screeningH.BatchPage))
	mux.Handle("POST /screening/batches/{code}/receive", s.shell.Page(s.screeningH.BatchReceiveSubmit))
	mux.Handle("GET /screening/lab", s.shell.Page(s.screeningH.LabPage))
	mux.Handle("POST /screening/lab/receive", s.shell.Page(s.screeningH.LabReceive))
	mux.Handle("POST /screening/lab/results", s.shell.Page(s.screeningH.LabResult))
	mux.Handle("POST /screening/lab/import", s.shell.Page(s.screeningH.LabImport))
	mux.Handle("GET /screening/recalls", s.shell.Page(s.screeningH.RecallsPage))
	mux.Handle("GET /screening/recalls/export", s.shell.Page(s.screeningH.RecallsExport))
	mux.Handle("POST /screening/recalls/{id}/notify", s.shell.Page(s.screeningH.RecallNotifySubmit))
	mux.Handle("GET /screening/positives", s.shell.Page(s.screeningH.PositivesPage))
	mux.Handle("GET /api/v1/tubes", s.shell.API(s.screeningH.APITubeList))
	mux.Handle("GET /api/v1/tubes/{code}", s.shell.API(s.screeningH.APITubeGet))
	mux.Handle("POST /api/v1/tubes/{code}/seal", s.shell.API(s.screeningH.APITubeSeal))
	mux.Handle("POST /api/v1/tubes/{code}/result", s.shell.API(s.screeningH.APITubeResult))
	mux.Handle("POST /api/v1/tubes/{code}/report", s.shell.API(s.screeningH.APITubeReport))
	mux.Handle("POST /api/v1/batches", s.shell.API(s.screeningH.APIBatchCreate))
	mux.Handle("GET /api/v1/batches/{code}", s.shell.API(s.screeningH.APIBatchGet))
	mux.Handle("POST /api/v1/batches/{code}/receive", s.shell.API(s.screeningH.APIBatchReceive))
	mux.Handle("POST /api/v1/lab-results", s.shell.API(s.screeningH.APILabResults))
	mux.Handle("POST /api/v1/lab-results/import", s.shell.API(s.screeningH.APILabResultsImport))
	mux.Handle("GET /api/v1/recalls", s.shell.API(s.screeningH.APIRecallList))
	mux.Handle("GET /api/v1/recalls/export", s.shell.API(s.screeningH.RecallsExport))
	mux.Handle("POST /api/v1/recalls/{id}/notify", s.shell.API(s.screeningH.APIRecallNotify))

	// Mass screening: registration (the sampler's page and the API).
	mux.Handle("GET /screening/sampler", s.shell.Page(s.screeningH.Sampler))
	mux.Handle("POST /api/v1/specimens", s.shell.API(s.screeningH.APISpecimenCreate))
	mux.Handle("POST /api/v1/specimens/batch", s.shell.API(s.screeningH.APISpecimenBatch))
	mux.Handle("GET /screening/people/{id}", s.shell.Page(s.screeningH.PersonPage))
	mux.Handle("GET /api/v1/people/{id}/specimens", s.shell.API(s.screeningH.APIPersonSpecimens))
}
