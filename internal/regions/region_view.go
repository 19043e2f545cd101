package regions

import (
	"strings"

	"github.com/shaobing/shaobing/internal/apperr"
	"github.com/shaobing/shaobing/internal/scope"
)

// RegionView is one division as the regions API shows it, with the children
// the caller may browse.
type RegionView struct {
	Code     string        `json:"code"`
	Name     string        `json:"name"`
	Level    string        `json:"level"`
	Path     string        `json:"path"`
	Children []RegionChild `json:"children"`
}

// RegionChild is a division directly under a RegionView.
type RegionChild struct {
	Code  string `json:"code"`
	Name  string `json:"name"`
	Level string `json:"level"`
}

// Browsable reports whether p may browse the division code: it lies within
// p's region or above it. Division names are public, but a user is shown only
// the part of the tree that leads to and lies under their own region; "" (the
// whole country) is above everyone.
func Browsable(p *scope.Principal, code string) bool {
	if p.IsSystem() || code == "" {
		return true
	}
	return p.RegionCode != "" && (strings.HasPrefix(code, p.RegionCode) || strings.HasPrefix(p.RegionCode, code))
}

// View returns the division code with its children that p may browse. A
// code the data does not list, or one p may not browse, is not found.
func (t *Tree) View(p *scope.Principal, code string) (RegionView, error) {
	v := RegionView{Children: []RegionChild{}}
	if code != "" {
		d, ok := t.Lookup(code)
		if !ok || !Browsable(p, code) {
			return RegionView{}, apperr.NotFoundf("region not found")
		}
		v.Code, v.Name, v.Level, v.Path = d.Code, d.Name, d.Level.String(), t.Path(d.Code)
	}
	for _, c := range t.Children(code) {
		if Browsable(p, c.Code) {
			v.Children = append(v.Children, RegionChild{Code: c.Code, Name: c.Name, Level: c.Level.String()})
		}
	}
	return v, nil
}
