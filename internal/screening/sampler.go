package screening

import (
	"net/http"
	"slices"
	"strings"

	"github.com/shaobing/shaobing/internal/regions"
	"github.com/shaobing/shaobing/internal/web"
)

// SamplerPage is the sampler page's data: the points the user may register
// at, and the villages around them for the residence choice.
type SamplerPage struct {
	Points  []SamplerPoint
	Regions []RegionOption
}

// RegionOption is a region offered in a select.
type RegionOption struct {
	Code, Name string
}

// Sampler is the sampler's phone page: GET /screening/sampler. Registration
// runs in the browser against the API, through an offline queue.
func (h *Handlers) Sampler(w http.ResponseWriter, r *http.Request) error {
	if _, err := web.UserWith(r, SampleRoles...); err != nil {
		return err
	}
	points, err := h.svc.SamplerPoints(r.Context())
	if err != nil {
		return err
	}
	h.shell.Render(w, r, "screening_sampler", &SamplerPage{Points: points, Regions: residenceOptions(h.svc.tree, points)})
	return nil
}

// residenceOptions lists the villages people sampled at the points most
// likely live in: those of each point's township (a point placed in a
// village offers its township's villages too), then the townships
// themselves for residents whose village is not known.
func residenceOptions(tree *regions.Tree, points []SamplerPoint) []RegionOption {
	seen := map[string]bool{}
	var villages, townships []RegionOption
	for _, pt := range points {
		town := pt.RegionCode
		if d, ok := tree.Lookup(town); ok && d.Level == regions.Village && len(town) >= 9 {
			town = town[:9]
		}
		d, ok := tree.Lookup(town)
		if !ok || seen[town] {
			continue
		}
		seen[town] = true
		townships = append(townships, RegionOption{Code: d.Code, Name: d.Name})
		for _, v := range tree.Children(town) {
			villages = append(villages, RegionOption{Code: v.Code, Name: d.Name + " " + v.Name})
		}
	}
	slices.SortFunc(villages, func(a, b RegionOption) int { return strings.Compare(a.Code, b.Code) })
	return append(villages, townships...)
}
