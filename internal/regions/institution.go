package regions

import (
	"strings"
	"time"
	"unicode/utf8"

	"github.com/shaobing/shaobing/internal/apperr"
)

// InstitutionType is what an institution is. The codes are stored and sent
// over the API and CLI: they are a contract.
type InstitutionType string

// The institution types of DESIGN.md §3.
const (
	Bureau               InstitutionType = "bureau"                 // 卫健局 / 卫健委
	CDC                  InstitutionType = "cdc"                    // 疾控中心
	Hospital             InstitutionType = "hospital"               // 医院
	TownshipHealthCentre InstitutionType = "township_health_centre" // 乡镇卫生院 / 社区卫生服务中心
	VillageClinic        InstitutionType = "village_clinic"         // 村卫生室
	SamplingPoint        InstitutionType = "sampling_point"         // 采样点
	Lab                  InstitutionType = "lab"                    // 检测实验室
	IsolationSite        InstitutionType = "isolation_site"         // 集中隔离点
	Pharmacy             InstitutionType = "pharmacy"               // 药店
	WasteTransporter     InstitutionType = "waste_transporter"      // 医疗废物运输单位
	WasteDisposalPlant   InstitutionType = "waste_disposal_plant"   // 医疗废物处置单位
)

// InstitutionTypes lists every type in display order.
func InstitutionTypes() []InstitutionType {
	return []InstitutionType{Bureau, CDC, Hospital, TownshipHealthCentre, VillageClinic, SamplingPoint,
		Lab, IsolationSite, Pharmacy, WasteTransporter, WasteDisposalPlant}
}

// ParseInstitutionType validates a type code.
func ParseInstitutionType(s string) (InstitutionType, error) {
	s = strings.TrimSpace(s)
	for _, t := range InstitutionTypes() {
		if string(t) == s {
			return t, nil
		}
	}
	return "", apperr.Field("type", "institution.type_unknown", "unknown institution type %q", s)
}

// Institution is a bureau, CDC, hospital, sampling point … that users and
// records belong to.
type Institution struct {
	ID         int64           `json:"id"`
	Name       string          `json:"name"`
	Type       InstitutionType `json:"type"`
	RegionCode string          `json:"region_code"`
	// RegionPath names the region from the province down, for display.
	RegionPath string `json:"region_path"`
	// ParentID is the supervising institution, 0 for none.
	ParentID  int64     `json:"parent_id,omitempty"`
	Address   string    `json:"address"`
	Phone     string    `json:"phone"`
	Active    bool      `json:"active"`
	CreatedAt time.Time `json:"created_at"`
	UpdatedAt time.Time `json:"updated_at"`
}

// InstitutionInput is what a user submits to create or change an institution.
type InstitutionInput struct {
	Name       string          `json:"name"`
	Type       InstitutionType `json:"type"`
	RegionCode string          `json:"region_code"`
	ParentID   int64           `json:"parent_id,omitempty"`
	Address    string          `json:"address"`
	Phone      string          `json:"phone"`
}

// Limits on free-text fields, in characters.
const (
	maxInstitutionName = 100
	maxAddress         = 200
	maxPhone           = 30
)

// normalize trims the input and checks each field against the rules that need
// no database, collecting every problem so the user sees them all at once.
// The region must be a listed division at city level or below (a bureau may
// be a city's 卫健委), or an unlisted village under a listed township.
func (in *InstitutionInput) normalize(tree *Tree) error {
	var p apperr.Problems
	in.Name = strings.TrimSpace(in.Name)
	in.Address = strings.TrimSpace(in.Address)
	in.Phone = strings.TrimSpace(in.Phone)
	in.RegionCode = strings.TrimSpace(in.RegionCode)
	switch n := utf8.RuneCountInString(in.Name); {
	case n == 0:
		p.Add("name", "required", "required")
	case n > maxInstitutionName:
		p.Add("name", "institution.too_long", "at most %v characters", maxInstitutionName)
	}
	if t, err := ParseInstitutionType(string(in.Type)); err != nil {
		p.AddErr("", err)
	} else {
		in.Type = t
	}
	if in.RegionCode == "" {
		p.Add("region_code", "required", "required")
	} else if d, err := tree.Resolve(in.RegionCode); err != nil {
		p.AddErr("", err)
	} else if d.Level < City {
		p.Add("region_code", "institution.region_level", "an institution belongs to a city, district, township or village")
	}
	if in.ParentID < 0 {
		p.Add("parent_id", "institution.parent_unknown", "no such institution")
	}
	if utf8.RuneCountInString(in.Address) > maxAddress {
		p.Add("address", "institution.too_long", "at most %v characters", maxAddress)
	}
	if !validPhone(in.Phone) {
		p.Add("phone", "institution.phone_invalid", "digits, spaces, + - ( ) only, at most %v characters", maxPhone)
	}
	return p.Err()
}

// validPhone accepts the ways an institution's phone is written: mobiles,
// landlines with area code (0577-63481234), extensions, or nothing.
func validPhone(s string) bool {
	if len(s) > maxPhone {
		return false
	}
	for _, r := range s {
		if !(r >= '0' && r <= '9' || strings.ContainsRune(" +-()", r)) {
			return false
		}
	}
	return true
}
