package people

import (
	"slices"
	"sort"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/shaobing/shaobing/internal/apperr"
)

// Tag marks a person as belonging to a group the bureau's work singles out
// (the elderly are sampled at home, the poverty-registered are followed up by
// family doctors …). The codes are stored and sent over the API: a contract.
type Tag string

// The tags.
const (
	TagElderly           Tag = "elderly"            // 老年人
	TagBedridden         Tag = "bedridden"          // 卧床
	TagDisabled          Tag = "disabled"           // 残疾
	TagKeyPopulation     Tag = "key_population"     // 重点人群
	TagPovertyRegistered Tag = "poverty_registered" // 建档立卡贫困户
	TagPregnant          Tag = "pregnant"           // 孕产妇
	TagChild             Tag = "child"              // 儿童
	TagChronicDisease    Tag = "chronic_disease"    // 慢病患者
)

// Tags lists every tag in display order.
func Tags() []Tag {
	return []Tag{TagElderly, TagBedridden, TagDisabled, TagKeyPopulation, TagPovertyRegistered, TagPregnant, TagChild, TagChronicDisease}
}

// ParseTag returns the tag named by s.
func ParseTag(s string) (Tag, error) {
	t := Tag(strings.TrimSpace(s))
	if slices.Contains(Tags(), t) {
		return t, nil
	}
	return "", apperr.Field(FieldTags, CodeTagUnknown, "unknown tag %v", s)
}

// More input fields and error codes of the registry (see idnumber.go for the
// identity-document ones).
const (
	FieldName       = "name"
	FieldAddress    = "address"
	FieldRegionCode = "region_code"
	FieldTags       = "tags"
	FieldReason     = "reason"
	FieldInstID     = "institution_id"

	CodeNameLength    = "name.length"
	CodeChars         = "text.control_chars"
	CodeAddressLength = "address.length"
	CodeRegionLevel   = "region_code.level"
	CodeTagUnknown    = "tags.unknown"
	CodeReasonLength  = "reason.length"
	CodeInstUnknown   = "institution_id.unknown"
	// CodeRegisteredElsewhere: the ID number belongs to a person outside
	// the writer's scope (a 409, with nothing of the person shown).
	CodeRegisteredElsewhere = "person.registered_elsewhere"
)

// Length limits, in runes.
const (
	maxName      = 50
	maxAddress   = 200
	minReason    = 4
	maxReason    = 200
	addressShown = 6 // runes of an address shown when masked
)

// Person is one registered person as stored. Its personal fields are in the
// clear: every output goes through Masked (or, after an audited unmask,
// Unmasked).
type Person struct {
	ID            int64
	IDType        IDType
	IDNumber      string // normal form (NormalizeIDNumber)
	Name          string
	Sex           Sex       // from a resident ID; SexUnknown otherwise
	BirthDate     time.Time // from a resident ID; zero otherwise
	Phone         string    // 11-digit mobile number; "" when NoPhone
	NoPhone       bool      // registered without a phone (the elderly, children)
	Address       string
	RegionCode    string // residence
	InstitutionID int64  // the registering institution; 0 for none
	Tags          []Tag
	CreatedAt     time.Time
	UpdatedAt     time.Time
	CreatedBy     int64 // user id; 0 for the system
	UpdatedBy     int64

	// RegionName is the residence's place names (regions.Tree.Path), filled
	// in when the person is read.
	RegionName string
	// Age is the age in whole years on the day the person was read; it means
	// nothing when BirthDate is zero.
	Age int
}

// NewPerson is a registration: what a user, an import row or a specimen
// registration says about a person.
type NewPerson struct {
	IDType   IDType // "" means resident ID
	IDNumber string
	Name     string
	Phone    string
	// NoPhone registers a person without a phone. A phone that is given wins:
	// the person is then stored with it and NoPhone false.
	NoPhone    bool
	Address    string // "" keeps a re-registered person's stored address
	RegionCode string
	// Tags replace the stored tags; nil keeps a re-registered person's tags
	// (an empty, non-nil slice clears them).
	Tags []Tag
	// InstitutionID is the registering institution; 0 means the caller's own.
	InstitutionID int64
}

// PersonView is a person as shown: in lists, details, exports, the API and
// sync payloads. Masked is true unless the view came from an audited unmask.
type PersonView struct {
	ID         int64     `json:"id"`
	IDType     IDType    `json:"id_type"`
	IDNumber   string    `json:"id_number"`
	Name       string    `json:"name"`
	Sex        Sex       `json:"sex"`
	Age        *int      `json:"age"`
	BirthDate  string    `json:"birth_date,omitempty"` // only unmasked
	Phone      string    `json:"phone"`
	NoPhone    bool      `json:"no_phone"`
	Address    string    `json:"address"`
	RegionCode string    `json:"region_code"`
	RegionName string    `json:"region_name"`
	Tags       []Tag     `json:"tags"`
	CreatedAt  time.Time `json:"created_at"`
	UpdatedAt  time.Time `json:"updated_at"`
	Masked     bool      `json:"masked"`
}

// Masked returns the default view: name, ID number, phone and address
// masked, and the age instead of the birth date.
func (p Person) Masked() PersonView {
	v := p.view()
	v.IDNumber = MaskIDNumber(p.IDNumber)
	v.Name = MaskName(p.Name)
	v.Phone = MaskPhone(p.Phone)
	v.Address = MaskAddress(p.Address)
	v.Masked = true
	return v
}

// Unmasked returns the view in the clear, birth date included. Only Unmask,
// which checks the right and records the reason, hands it out.
func (p Person) Unmasked() PersonView {
	v := p.view()
	if !p.BirthDate.IsZero() {
		v.BirthDate = p.BirthDate.Format(time.DateOnly)
	}
	return v
}

func (p Person) view() PersonView {
	v := PersonView{
		ID: p.ID, IDType: p.IDType, IDNumber: p.IDNumber, Name: p.Name, Sex: p.Sex,
		Phone: p.Phone, NoPhone: p.NoPhone, Address: p.Address,
		RegionCode: p.RegionCode, RegionName: p.RegionName, Tags: p.Tags,
		CreatedAt: p.CreatedAt, UpdatedAt: p.UpdatedAt,
	}
	if v.Tags == nil {
		v.Tags = []Tag{}
	}
	if !p.BirthDate.IsZero() {
		age := p.Age
		v.Age = &age
	}
	return v
}

// MaskAddress keeps the first 6 runes of an address — usually province, city
// and district, which the region code shows anyway — and replaces the rest
// with "***", so the length of the street part is not shown either. A
// shorter address keeps only its first half.
func MaskAddress(s string) string {
	r := []rune(strings.ToValidUTF8(s, "\uFFFD"))
	if len(r) == 0 {
		return ""
	}
	keep := addressShown
	if len(r) <= addressShown*2 {
		keep = min(addressShown, len(r)/2)
	}
	return string(r[:keep]) + "***"
}

// cleanText trims s and checks its length in runes and that it holds no
// control characters (which would break CSV exports and log lines).
func cleanText(problems *apperr.Problems, field, lengthCode, s string, minLen, maxLen int) string {
	s = trimEdges(s)
	if !utf8.ValidString(s) || strings.ContainsFunc(s, unicode.IsControl) {
		problems.Add(field, CodeChars, "must not contain control characters")
		return s
	}
	if n := utf8.RuneCountInString(s); n < minLen || n > maxLen {
		if n == 0 {
			problems.Add(field, CodeRequired, "this field is required")
		} else {
			problems.Add(field, lengthCode, "must have %v to %v characters", minLen, maxLen)
		}
	}
	return s
}

// normalTags validates tags and returns them sorted without duplicates; nil
// stays nil.
func normalTags(problems *apperr.Problems, tags []Tag) []Tag {
	if tags == nil {
		return nil
	}
	out := make([]Tag, 0, len(tags))
	for _, t := range tags {
		pt, err := ParseTag(string(t))
		if err != nil {
			problems.AddErr(FieldTags, err)
			continue
		}
		if !slices.Contains(out, pt) {
			out = append(out, pt)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i] < out[j] })
	return out
}

// joinTags and splitTags convert between tags and their stored comma list.
func joinTags(tags []Tag) string {
	s := make([]string, len(tags))
	for i, t := range tags {
		s[i] = string(t)
	}
	return strings.Join(s, ",")
}

func splitTags(s string) []Tag {
	if s == "" {
		return []Tag{}
	}
	parts := strings.Split(s, ",")
	out := make([]Tag, len(parts))
	for i, p := range parts {
		out[i] = Tag(p)
	}
	return out
}
