package auth

import (
	"net/http"
	"strconv"

	"github.com/shaobing/shaobing/internal/scope"
	"github.com/shaobing/shaobing/internal/web"
)

// listResponse is the shape of every list the API returns.
type listResponse[T any] struct {
	Items      []T    `json:"items"`
	NextCursor string `json:"next_cursor"`
}

// APIUsers lists the users in the caller's scope (bureau_admin):
// GET /api/v1/users?q=&role=&limit=&cursor=.
func (s *Service) APIUsers(w http.ResponseWriter, r *http.Request) error {
	if _, err := web.UserWith(r, scope.BureauAdmin); err != nil {
		return err
	}
	q := r.URL.Query()
	limit, err := web.Limit(q, 50, 200)
	if err != nil {
		return err
	}
	users, next, err := s.ListUsers(r.Context(), UserFilter{Q: q.Get("q"), Role: scope.Role(q.Get("role")), Limit: limit}, q.Get("cursor"))
	if err != nil {
		return err
	}
	if users == nil {
		users = []User{}
	}
	web.WriteJSON(w, http.StatusOK, listResponse[User]{Items: users, NextCursor: next})
	return nil
}

// APIUserCreate adds a user: POST /api/v1/users with a NewUser body.
func (s *Service) APIUserCreate(w http.ResponseWriter, r *http.Request) error {
	if _, err := web.UserWith(r, scope.BureauAdmin); err != nil {
		return err
	}
	var in NewUser
	if err := web.DecodeJSON(w, r, &in, 64<<10); err != nil {
		return err
	}
	u, err := s.CreateUser(r.Context(), in)
	if err != nil {
		return err
	}
	w.Header().Set("Location", "/api/v1/users/"+strconv.FormatInt(u.ID, 10))
	web.WriteJSON(w, http.StatusCreated, u)
	return nil
}

// APIUser returns one user in the caller's scope: GET /api/v1/users/{id}.
func (s *Service) APIUser(w http.ResponseWriter, r *http.Request) error {
	if _, err := web.UserWith(r, scope.BureauAdmin); err != nil {
		return err
	}
	id, err := web.PathID(r, "id")
	if err != nil {
		return err
	}
	u, err := s.GetUser(r.Context(), id)
	if err != nil {
		return err
	}
	web.WriteJSON(w, http.StatusOK, u)
	return nil
}

// APIUserUpdate changes a user's name, roles or scope: PATCH
// /api/v1/users/{id} with a UserChange body; the fields present are changed.
func (s *Service) APIUserUpdate(w http.ResponseWriter, r *http.Request) error {
	if _, err := web.UserWith(r, scope.BureauAdmin); err != nil {
		return err
	}
	id, err := web.PathID(r, "id")
	if err != nil {
		return err
	}
	var in UserChange
	if err := web.DecodeJSON(w, r, &in, 64<<10); err != nil {
		return err
	}
	u, err := s.UpdateUser(r.Context(), id, in)
	if err != nil {
		return err
	}
	web.WriteJSON(w, http.StatusOK, u)
	return nil
}

// Me is the answer of GET /api/v1/me: who the caller is and what they may see.
type Me struct {
	UserID        int64        `json:"user_id"`
	Username      string       `json:"username"`
	Roles         []scope.Role `json:"roles"`
	RegionCode    string       `json:"region_code"`
	InstitutionID *int64       `json:"institution_id"`
	// TokenID is set when the caller used an API token.
	TokenID int64 `json:"token_id,omitzero"`
}

// APIMe answers who the caller is: GET /api/v1/me.
func (s *Service) APIMe(w http.ResponseWriter, r *http.Request) error {
	p, err := web.User(r)
	if err != nil {
		return err
	}
	me := Me{UserID: p.UserID, Username: p.Username, Roles: p.Roles, RegionCode: p.RegionCode, TokenID: p.TokenID}
	if me.Roles == nil {
		me.Roles = []scope.Role{}
	}
	if p.InstitutionID != 0 {
		id := p.InstitutionID
		me.InstitutionID = &id
	}
	web.WriteJSON(w, http.StatusOK, me)
	return nil
}
