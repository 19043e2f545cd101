package regions

import (
	"html/template"
	"net/http"
	"strings"

	"github.com/shaobing/shaobing/internal/apperr"
	"github.com/shaobing/shaobing/internal/locale"
	"github.com/shaobing/shaobing/internal/scope"
	"github.com/shaobing/shaobing/internal/web"
)

// Picker is the data of the shared "region_picker" template (in the web
// shell): cascading selects from the user's region down to the village,
// each loaded from GET /regions/options as the one above is chosen. It
// submits one field, region_code; without JavaScript it is a plain text
// input for the code.
type Picker struct {
	Value    string        // the region code the form holds
	Root     string        // the user's region: the first select lists its children
	RootName string        // shown as the first select's "whole region" choice
	Levels   []PickerLevel // one select each; none when the user has no region
}

// PickerLevel is one select of a Picker.
type PickerLevel struct {
	LabelKey string // message key naming the level ("region.level.township")
	Options  []PickerOption
}

// PickerOption is one choice of a PickerLevel.
type PickerOption struct {
	Code, Name string
	Selected   bool
}

// Picker returns the picker for p's region with value chosen, if it lies
// in that region. A user without a region (an institution-scoped user, the
// system) gets only the text input.
func (t *Tree) Picker(p *scope.Principal, value string) Picker {
	value = strings.TrimSpace(value)
	pk := Picker{Value: value}
	root, ok := t.Lookup(p.RegionCode)
	if p.IsSystem() || !ok || root.Level >= Village {
		return pk
	}
	pk.Root, pk.RootName = root.Code, root.Name
	// The chosen divisions below the root, top first.
	var chain []Division
	if value != root.Code && strings.HasPrefix(value, root.Code) {
		for _, d := range append(t.Ancestors(value), Division{Code: value}) {
			if len(d.Code) > len(root.Code) {
				chain = append(chain, d)
			}
		}
	}
	parent := root.Code
	for l := root.Level + 1; l <= Village; l++ {
		var lv PickerLevel
		var chosen string
		if i := len(pk.Levels); i < len(chain) {
			chosen = chain[i].Code
		}
		if parent != "" {
			for _, c := range t.Children(parent) {
				lv.Options = append(lv.Options, PickerOption{Code: c.Code, Name: c.Name, Selected: c.Code == chosen})
			}
		}
		lv.LabelKey = "region.level." + l.String()
		if len(lv.Options) > 0 {
			lv.LabelKey = "region.level." + lv.Options[0].level().String()
		}
		pk.Levels = append(pk.Levels, lv)
		parent = chosen
	}
	return pk
}

func (o PickerOption) level() Level { l, _ := LevelOf(o.Code); return l }

// optionsTemplate renders the choices under one division for a picker's
// next select: a blank "any" first, so a half-made choice stays possible.
var optionsTemplate = template.Must(template.New("options").Parse(
	`<option value="">{{.Any}}</option>{{range .Children}}<option value="{{.Code}}">{{.Name}}</option>{{end}}`))

// RegionOptions answers the picker's htmx request GET /regions/options?parent=CODE
// with the <option>s of the divisions directly under CODE. Only the user's
// own region and what lies beneath it may be listed: anything else is not
// found, as everywhere out of scope.
func (h *Handlers) RegionOptions(w http.ResponseWriter, r *http.Request) error {
	p, err := web.User(r)
	if err != nil {
		return err
	}
	parent := r.URL.Query().Get("parent")
	if _, ok := h.tree.Lookup(parent); !ok || !Pickable(p, parent) {
		return apperr.NotFoundf("region not found")
	}
	lang := locale.FromRequest(r)
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "private, max-age=3600")
	return optionsTemplate.Execute(w, struct {
		Any      string
		Children []Division
	}{h.shell.Catalog.T(lang, "picker.any"), h.tree.Children(parent)})
}

// Pickable reports whether p may choose divisions under code: code is p's
// region or lies within it. Unlike Browsable, the divisions above p's region
// are not offered, since nothing there is p's to record.
func Pickable(p *scope.Principal, code string) bool {
	if p.IsSystem() {
		return true
	}
	return p.RegionCode != "" && strings.HasPrefix(code, p.RegionCode)
}
