package server

import (
	"net/http"

	"github.com/shaobing/shaobing/internal/audit"
	"github.com/shaobing/shaobing/internal/auth"
	"github.com/shaobing/shaobing/internal/deadlines"
	"github.com/shaobing/shaobing/internal/people"
	"github.com/shaobing/shaobing/internal/regions"
	"github.com/shaobing/shaobing/internal/scope"
	"github.com/shaobing/shaobing/internal/settings"
	"github.com/shaobing/shaobing/internal/web"
)

// navigation is the main menu; each entry shows only to the roles listed.
func navigation() []web.NavItem {
	return []web.NavItem{
		{Key: "nav.home", Path: "/"},
		{Key: "deadlines.nav", Path: "/inbox"},
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
}
