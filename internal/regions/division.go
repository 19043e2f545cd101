// Package regions knows China's administrative divisions: the statistical
// division codes that scope every record in shaobing.
package regions

import (
	"embed"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"slices"
	"strings"

	"github.com/shaobing/shaobing/internal/apperr"
)

// Level is a division's rank, read from the length of its code.
type Level int

// The levels, from the top. A code has 2, 4, 6, 9 or 12 digits respectively.
const (
	Province Level = iota + 1 // 省 (2 digits)
	City                      // 市 prefecture city (4 digits)
	District                  // 区县 district or county (6 digits, GB/T 2260)
	Township                  // 乡镇街道 township or street (9 digits)
	Village                   // 村/社区 village or community (12 digits)
)

// String returns the level's English name.
func (l Level) String() string {
	switch l {
	case Province:
		return "province"
	case City:
		return "city"
	case District:
		return "district"
	case Township:
		return "township"
	case Village:
		return "village"
	default:
		return fmt.Sprintf("Level(%d)", int(l))
	}
}

// codeLen is the number of digits of a code at level l, 0 for no level.
func (l Level) codeLen() int {
	switch l {
	case Province:
		return 2
	case City:
		return 4
	case District:
		return 6
	case Township:
		return 9
	case Village:
		return 12
	default:
		return 0
	}
}

// LevelOf returns the level of a code: 2, 4, 6, 9 or 12 ASCII digits.
// It checks only the form, not whether the division exists.
func LevelOf(code string) (Level, bool) {
	for l := Province; l <= Village; l++ {
		if len(code) != l.codeLen() {
			continue
		}
		for i := 0; i < len(code); i++ {
			if code[i] < '0' || code[i] > '9' {
				return 0, false
			}
		}
		return l, true
	}
	return 0, false
}

// ValidCode reports whether code has the form of a division code.
func ValidCode(code string) bool {
	_, ok := LevelOf(code)
	return ok
}

// Division is one administrative division.
type Division struct {
	Code string
	Name string
	// Level follows from the length of Code.
	Level Level
	// ParentCode is the nearest division above that exists in the data, "" for a
	// province. It is usually Code cut to the level above, but skips a level the
	// data lacks.
	ParentCode string
	// Known is false only for a village that Resolve accepted without the data
	// listing it; such a division has no Name.
	Known bool
}

// SeedRegions are the regions whose villages the embedded data lists; elsewhere
// it stops at townships. They are the regions the project's reference
// documents come from and make good demo and test regions.
var SeedRegions = []string{"330305", "230506", "371302", "1306"}

// dataFS holds the division CSVs; see divisions/README.md for their source.
//
//go:embed divisions/*.csv
var dataFS embed.FS

// Tree is the hierarchy of divisions. It is read-only once loaded and safe
// for concurrent use.
type Tree struct {
	// divisions holds the provinces, then the cities, and so on, each level
	// sorted by code: the divisions of one level under a code are then one
	// contiguous run, found by binary search.
	divisions []Division
	byLevel   [Village + 1][]Division // byLevel[l] is level l's part of divisions
	index     map[string]int32        // code → position in divisions
	children  map[string][]int32      // parent code ("" for the country) → positions, in code order
}

// LoadTree parses the embedded division data.
func LoadTree() (*Tree, error) {
	return loadTree(dataFS)
}

// divisionFile is one CSV of the data set. Each holds one level; its third
// column, when present, is the parent's code.
type divisionFile struct {
	name  string
	level Level
}

// loadTree parses the division CSVs found under divisions/ in fsys.
func loadTree(fsys fs.FS) (*Tree, error) {
	files := []divisionFile{
		{"provinces.csv", Province},
		{"cities.csv", City},
		{"areas.csv", District},
		{"streets.csv", Township},
		{"villages-seed-regions.csv", Village},
	}
	// Sized for the shipped data so loading does not regrow the slice.
	divisions := make([]Division, 0, 53_000)
	var starts [Village + 2]int
	for _, f := range files {
		starts[f.level] = len(divisions)
		var err error
		divisions, err = readDivisions(fsys, f, divisions)
		if err != nil {
			return nil, fmt.Errorf("load divisions: %w", err)
		}
		// The files come sorted, which makes this a single pass.
		slices.SortFunc(divisions[starts[f.level]:], func(a, b Division) int { return strings.Compare(a.Code, b.Code) })
	}
	starts[Village+1] = len(divisions)

	t := &Tree{
		divisions: divisions,
		index:     make(map[string]int32, len(divisions)),
		// Nearly every parent is a province, city or district: villages are
		// shipped for few townships.
		children: make(map[string][]int32, starts[Township]),
	}
	for l := Province; l <= Village; l++ {
		t.byLevel[l] = divisions[starts[l]:starts[l+1]]
	}
	for i, d := range divisions {
		// Codes of different levels differ in length, so duplicates can only
		// be neighbours within one level.
		if i > 0 && divisions[i-1].Code == d.Code {
			return nil, fmt.Errorf("load divisions: duplicate code %s (%s, %s)", d.Code, divisions[i-1].Name, d.Name)
		}
		t.index[d.Code] = int32(i)
	}
	// Parents are found once every level is indexed, so that a missing level
	// (a district whose city the data lacks) hangs the division on the next
	// division above that does exist.
	var mixed []string // parents with children from more than one level
	for i := range divisions {
		d := &divisions[i]
		for l := d.Level - 1; l >= Province; l-- {
			if _, ok := t.index[d.Code[:l.codeLen()]]; ok {
				d.ParentCode = d.Code[:l.codeLen()]
				break
			}
		}
		kids := t.children[d.ParentCode]
		if n := len(kids); n > 0 && divisions[kids[n-1]].Level != d.Level {
			mixed = append(mixed, d.ParentCode)
		}
		t.children[d.ParentCode] = append(kids, int32(i))
	}
	// Children arrive level by level, each level in code order; only a parent
	// that gained children from two levels needs sorting.
	for _, p := range mixed {
		slices.SortFunc(t.children[p], func(a, b int32) int { return strings.Compare(divisions[a].Code, divisions[b].Code) })
	}
	return t, nil
}

// readDivisions appends the rows of one CSV to divisions, checking each code
// against the file's level and its parent column.
func readDivisions(fsys fs.FS, f divisionFile, divisions []Division) ([]Division, error) {
	file, err := fsys.Open("divisions/" + f.name)
	if err != nil {
		return nil, err
	}
	defer file.Close()

	r := csv.NewReader(file)
	r.ReuseRecord = true
	header, err := r.Read()
	if err != nil {
		return nil, fmt.Errorf("%s: header: %w", f.name, err)
	}
	if len(header) < 2 || header[0] != "code" || header[1] != "name" {
		return nil, fmt.Errorf("%s: header %q does not start with code,name", f.name, header)
	}
	for {
		rec, err := r.Read()
		if errors.Is(err, io.EOF) {
			return divisions, nil
		}
		if err != nil {
			return nil, fmt.Errorf("%s: %w", f.name, err)
		}
		line, _ := r.FieldPos(0)
		code, name := rec[0], strings.TrimSpace(rec[1])
		if l, ok := LevelOf(code); !ok || l != f.level {
			return nil, fmt.Errorf("%s:%d: code %q is not a %s code", f.name, line, code, f.level)
		}
		if name == "" {
			return nil, fmt.Errorf("%s:%d: code %s has no name", f.name, line, code)
		}
		// The parent column must agree with the code itself, which is what the
		// tree trusts; a mismatch means a damaged file.
		if f.level > Province && len(rec) > 2 && rec[2] != code[:(f.level-1).codeLen()] {
			return nil, fmt.Errorf("%s:%d: code %s does not lie under its parent %s", f.name, line, code, rec[2])
		}
		divisions = append(divisions, Division{Code: code, Name: name, Level: f.level, Known: true})
	}
}

// Lookup returns the division with the given code, if the data lists it.
func (t *Tree) Lookup(code string) (Division, bool) {
	i, ok := t.index[code]
	if !ok {
		return Division{}, false
	}
	return t.divisions[i], true
}

// Children returns the divisions directly under code, sorted by code; "" means
// the whole country and gives the provinces. It returns nil for an unknown code.
// A child may be more than one level below when the data lacks the level between.
func (t *Tree) Children(code string) []Division {
	kids := t.children[code]
	if len(kids) == 0 {
		return nil
	}
	out := make([]Division, len(kids))
	for i, k := range kids {
		out[i] = t.divisions[k]
	}
	return out
}

// Ancestors returns the listed divisions above code, province first, without
// code itself. It works for codes the data does not list (an unlisted village
// still has its township, district, city and province) and returns nil for a
// malformed code.
func (t *Tree) Ancestors(code string) []Division {
	level, ok := LevelOf(code)
	if !ok {
		return nil
	}
	var out []Division
	for l := Province; l < level; l++ {
		if d, ok := t.Lookup(code[:l.codeLen()]); ok {
			out = append(out, d)
		}
	}
	return out
}

// Path returns the names from the province down to code, space-separated, as
// in "浙江省 温州市 洞头区 北岙街道", or "" when the data does not list code.
// Placeholder cities such as 北京市's 市辖区 are left out of the ancestors, since
// they are not places anyone names in an address.
func (t *Tree) Path(code string) string {
	d, ok := t.Lookup(code)
	if !ok {
		return ""
	}
	var names []string
	for _, a := range t.Ancestors(code) {
		if a.Level == City && placeholderCity(a.Name) {
			continue
		}
		names = append(names, a.Name)
	}
	return strings.Join(append(names, d.Name), " ")
}

// placeholderCity reports whether a city-level name only groups districts for
// the statistics: municipalities' 市辖区 and 县, and the county-level cities
// that report straight to their province.
func placeholderCity(name string) bool {
	switch name {
	case "市辖区", "县", "省直辖县级行政区划", "自治区直辖县级行政区划":
		return true
	}
	return false
}

// Contains reports whether code is ancestor or lies beneath it. Both must be
// well-formed codes; the test is a prefix test on whole levels, so "3303"
// contains "330305" but "33030" contains nothing. It depends only on the codes,
// so it holds for villages the data does not list.
func (t *Tree) Contains(ancestor, code string) bool {
	// Both codes end on a level boundary, so a prefix is a whole ancestor.
	return ValidCode(ancestor) && ValidCode(code) && strings.HasPrefix(code, ancestor)
}

// Descendants returns the listed divisions of the given level beneath code,
// sorted by code; "" means the whole country. It returns nil when level is not
// below code's level.
func (t *Tree) Descendants(code string, level Level) []Division {
	top := Level(0)
	if code != "" {
		var ok bool
		if top, ok = LevelOf(code); !ok {
			return nil
		}
	}
	if level <= top || level > Village {
		return nil
	}
	// Codes are digits and ':' sorts right after '9', so [code, code+":")
	// is exactly the run of codes that start with code.
	run := t.byLevel[level]
	lo, _ := slices.BinarySearchFunc(run, code, compareCode)
	hi, _ := slices.BinarySearchFunc(run, code+":", compareCode)
	if lo == hi {
		return nil
	}
	return slices.Clone(run[lo:hi])
}

func compareCode(d Division, code string) int { return strings.Compare(d.Code, code) }

// Resolve returns the division for a code a user entered. Besides listed
// codes it accepts a village code the data does not list when the data lists
// its township, since villages are only shipped for the seed regions; that
// division has no Name and Known is false. Any other code is an Invalid
// *apperr.Error on the field region_code.
func (t *Tree) Resolve(code string) (Division, error) {
	if d, ok := t.Lookup(code); ok {
		return d, nil
	}
	if l, ok := LevelOf(code); ok && l == Village {
		township := code[:Township.codeLen()]
		if _, ok := t.Lookup(township); ok {
			return Division{Code: code, Level: Village, ParentCode: township}, nil
		}
	}
	return Division{}, apperr.Field("region_code", "region_code.unknown", "unknown region code %v", code)
}

// HasVillages reports whether the data lists the villages under code: true for
// a seed region and anything inside one.
func (t *Tree) HasVillages(code string) bool {
	for _, seed := range SeedRegions {
		if t.Contains(seed, code) {
			return true
		}
	}
	return false
}
