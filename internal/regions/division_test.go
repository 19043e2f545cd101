package regions

import (
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"
	"testing/fstest"

	"github.com/shaobing/shaobing/internal/apperr"
)

// testTree is loaded once: the tree is read-only, and loading it per test
// would only slow the race-enabled run.
var testTree = sync.OnceValues(LoadTree)

func tree(t testing.TB) *Tree {
	t.Helper()
	tr, err := testTree()
	if err != nil {
		t.Fatalf("LoadTree: %v", err)
	}
	return tr
}

// csvCodes reads the first column of a shipped CSV straight from disk, without
// the loader, so tests can count rows independently of the code under test.
func csvCodes(t *testing.T, file string) []string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("divisions", file))
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	var codes []string
	for _, line := range lines[1:] {
		code, _, _ := strings.Cut(line, ",")
		codes = append(codes, code)
	}
	return codes
}

func countPrefix(codes []string, prefix string) int {
	n := 0
	for _, c := range codes {
		if strings.HasPrefix(c, prefix) {
			n++
		}
	}
	return n
}

func codesOf(ds []Division) []string {
	out := make([]string, len(ds))
	for i, d := range ds {
		out[i] = d.Code
	}
	return out
}

func TestLevelOf(t *testing.T) {
	tests := []struct {
		code  string
		level Level
		ok    bool
	}{
		{"33", Province, true},
		{"3303", City, true},
		{"330305", District, true},
		{"330305001", Township, true},
		{"330305001001", Village, true},
		{"441900", District, true}, // a city without districts, listed as its own district
		{"", 0, false},
		{"3", 0, false},
		{"330", 0, false},
		{"33030", 0, false},
		{"3303050", 0, false},
		{"33030500", 0, false},
		{"3303050010", 0, false},
		{"33030500100", 0, false},
		{"3303050010011", 0, false},
		{"33a3", 0, false},
		{"3303 5", 0, false},
		{"+33030", 0, false},
		{"３３", 0, false}, // full-width digits: 6 bytes, not digits
		{"3303\n", 0, false},
	}
	for _, tt := range tests {
		level, ok := LevelOf(tt.code)
		if level != tt.level || ok != tt.ok {
			t.Errorf("LevelOf(%q) = %v, %v; want %v, %v", tt.code, level, ok, tt.level, tt.ok)
		}
		if got := ValidCode(tt.code); got != tt.ok {
			t.Errorf("ValidCode(%q) = %v; want %v", tt.code, got, tt.ok)
		}
	}
}

func TestLevelString(t *testing.T) {
	tests := []struct {
		level Level
		want  string
	}{
		{Province, "province"},
		{Township, "township"},
		{Village, "village"},
		{Level(0), "Level(0)"},
	}
	for _, tt := range tests {
		if got := tt.level.String(); got != tt.want {
			t.Errorf("Level(%d).String() = %q; want %q", int(tt.level), got, tt.want)
		}
	}
}

func TestContains(t *testing.T) {
	tr := tree(t)
	tests := []struct {
		ancestor, code string
		want           bool
	}{
		{"3303", "330305", true},
		{"33", "330305001001", true},
		{"330305", "330305", true},            // a region contains itself
		{"330305001", "330305001999", true},   // unlisted village: codes alone decide
		{"33030", "330305", false},            // not a level boundary
		{"3303", "33030", false},              // malformed code
		{"3303", "3303050", false},            // malformed code
		{"330305", "3303", false},             // deeper cannot contain shallower
		{"3304", "330305", false},             // sibling
		{"330305", "330306001", false},        // sibling's child
		{"", "330305", false},                 // "" is not a code
		{"3303", "", false},                   // "" is not a code
		{"330305001", "3303050010011", false}, // too long
		{"33", "330305x01001", false},         // non-digit
	}
	for _, tt := range tests {
		if got := tr.Contains(tt.ancestor, tt.code); got != tt.want {
			t.Errorf("Contains(%q, %q) = %v; want %v", tt.ancestor, tt.code, got, tt.want)
		}
	}
}

func TestLookup(t *testing.T) {
	tr := tree(t)
	tests := []struct {
		code string
		want Division
	}{
		{"33", Division{Code: "33", Name: "浙江省", Level: Province, Known: true}},
		{"3303", Division{Code: "3303", Name: "温州市", Level: City, ParentCode: "33", Known: true}},
		{"330305", Division{Code: "330305", Name: "洞头区", Level: District, ParentCode: "3303", Known: true}},
		{"330305001", Division{Code: "330305001", Name: "北岙街道", Level: Township, ParentCode: "330305", Known: true}},
		{"330305001001", Division{Code: "330305001001", Name: "城中社区", Level: Village, ParentCode: "330305001", Known: true}},
		{"429004", Division{Code: "429004", Name: "仙桃市", Level: District, ParentCode: "4290", Known: true}},
		{"230506", Division{Code: "230506", Name: "宝山区", Level: District, ParentCode: "2305", Known: true}},
		{"371302", Division{Code: "371302", Name: "兰山区", Level: District, ParentCode: "3713", Known: true}},
		{"1306", Division{Code: "1306", Name: "保定市", Level: City, ParentCode: "13", Known: true}},
	}
	for _, tt := range tests {
		got, ok := tr.Lookup(tt.code)
		if !ok || got != tt.want {
			t.Errorf("Lookup(%q) = %+v, %v; want %+v", tt.code, got, ok, tt.want)
		}
	}
	for _, code := range []string{"", "330399", "330305001999", "33030"} {
		if d, ok := tr.Lookup(code); ok {
			t.Errorf("Lookup(%q) = %+v; want not found", code, d)
		}
	}
}

func TestSeedRegions(t *testing.T) {
	tr := tree(t)
	streets := csvCodes(t, "streets.csv")
	villages := csvCodes(t, "villages-seed-regions.csv")
	for _, seed := range SeedRegions {
		t.Run(seed, func(t *testing.T) {
			if _, ok := tr.Lookup(seed); !ok {
				t.Fatalf("seed region %s not in the data", seed)
			}
			if !tr.HasVillages(seed) {
				t.Errorf("HasVillages(%s) = false", seed)
			}
			townships := tr.Descendants(seed, Township)
			if want := countPrefix(streets, seed); len(townships) != want || want == 0 {
				t.Errorf("%s: %d townships; streets.csv has %d", seed, len(townships), want)
			}
			if got, want := len(tr.Descendants(seed, Village)), countPrefix(villages, seed); got != want || want == 0 {
				t.Errorf("%s: %d villages; villages CSV has %d", seed, got, want)
			}
			// The seed list must match the data: every township in a seed
			// region has its villages.
			for _, tw := range townships {
				if !tr.HasVillages(tw.Code) {
					t.Errorf("HasVillages(%s) = false inside seed %s", tw.Code, seed)
				}
				if len(tr.Children(tw.Code)) == 0 {
					t.Errorf("township %s %s in seed %s has no villages", tw.Code, tw.Name, seed)
				}
			}
		})
	}
	// And the other way round: every shipped village lies in a seed region.
	for _, d := range tr.Descendants("", Village) {
		if !tr.HasVillages(d.Code) {
			t.Errorf("village %s %s lies outside every seed region", d.Code, d.Name)
		}
	}
	for _, code := range []string{"33", "3303", "330302", "110101001", "13", "bad"} {
		if tr.HasVillages(code) {
			t.Errorf("HasVillages(%q) = true", code)
		}
	}
}

func TestDongtou(t *testing.T) {
	tr := tree(t)
	streets := csvCodes(t, "streets.csv")
	villages := csvCodes(t, "villages-seed-regions.csv")

	kids := tr.Children("330305")
	if want := countPrefix(streets, "330305"); len(kids) != want {
		t.Fatalf("Children(330305): %d; streets.csv has %d", len(kids), want)
	}
	var names []string
	for _, k := range kids {
		names = append(names, k.Name)
	}
	for _, want := range []string{"北岙街道", "灵昆街道", "元觉街道", "霓屿街道", "大门镇", "鹿西乡"} {
		if !slices.Contains(names, want) {
			t.Errorf("Children(330305) lacks %s: %v", want, names)
		}
	}
	if kids[0].Code != "330305001" || kids[0].Name != "北岙街道" {
		t.Errorf("first township = %+v; want 330305001 北岙街道", kids[0])
	}
	for _, k := range kids {
		if got, want := len(tr.Children(k.Code)), countPrefix(villages, k.Code); got != want {
			t.Errorf("Children(%s %s): %d villages; CSV has %d", k.Code, k.Name, got, want)
		}
	}
}

func TestChildren(t *testing.T) {
	tr := tree(t)
	provinces := tr.Children("")
	if want := len(csvCodes(t, "provinces.csv")); len(provinces) != want {
		t.Errorf("Children(\"\"): %d provinces; want %d", len(provinces), want)
	}
	if len(provinces) > 0 && (provinces[0].Code != "11" || provinces[0].Name != "北京市") {
		t.Errorf("first province = %+v; want 11 北京市", provinces[0])
	}
	for _, code := range []string{"", "33", "3303", "1306", "130602001"} {
		codes := codesOf(tr.Children(code))
		if len(codes) == 0 || !slices.IsSorted(codes) {
			t.Errorf("Children(%q) empty or not sorted: %v", code, codes)
		}
	}
	for _, code := range []string{"3303050", "330399", "330305001001", "bad"} {
		if got := tr.Children(code); got != nil {
			t.Errorf("Children(%q) = %v; want nil", code, got)
		}
	}
	// The result is the caller's to change.
	a := tr.Children("330305")
	a[0].Name = "changed"
	if b := tr.Children("330305"); b[0].Name != "北岙街道" {
		t.Errorf("changing a Children result changed the tree: %q", b[0].Name)
	}
}

func TestAncestors(t *testing.T) {
	tr := tree(t)
	tests := []struct {
		code string
		want []string
	}{
		{"330305001001", []string{"33", "3303", "330305", "330305001"}},
		{"330305001999", []string{"33", "3303", "330305", "330305001"}}, // unlisted village
		{"330305", []string{"33", "3303"}},
		{"429004", []string{"42", "4290"}},
		{"33", nil},
		{"33030", nil},
		{"", nil},
	}
	for _, tt := range tests {
		if got := codesOf(tr.Ancestors(tt.code)); !slices.Equal(got, tt.want) {
			t.Errorf("Ancestors(%q) = %v; want %v", tt.code, got, tt.want)
		}
	}
}

func TestPath(t *testing.T) {
	tr := tree(t)
	tests := []struct {
		code, want string
	}{
		{"330305001", "浙江省 温州市 洞头区 北岙街道"},
		{"330305001001", "浙江省 温州市 洞头区 北岙街道 城中社区"},
		{"33", "浙江省"},
		{"110101001", "北京市 东城区 东华门街道"}, // 市辖区 left out
		{"1101", "北京市 市辖区"},            // but kept when it is the code itself
		{"429004", "湖北省 仙桃市"},          // 省直辖县级行政区划 left out
		{"441900003", "广东省 东莞市 东莞市 东城街道"},
		{"330305001999", ""},
		{"33030", ""},
		{"", ""},
	}
	for _, tt := range tests {
		if got := tr.Path(tt.code); got != tt.want {
			t.Errorf("Path(%q) = %q; want %q", tt.code, got, tt.want)
		}
	}
}

func TestDescendants(t *testing.T) {
	tr := tree(t)
	streets := csvCodes(t, "streets.csv")
	villages := csvCodes(t, "villages-seed-regions.csv")
	tests := []struct {
		code  string
		level Level
		want  int
	}{
		{"330305001", Village, countPrefix(villages, "330305001")},
		{"330305", Township, countPrefix(streets, "330305")},
		{"1306", Village, countPrefix(villages, "1306")},
		{"33", Township, countPrefix(streets, "33")},
		{"", Province, len(csvCodes(t, "provinces.csv"))},
		{"", Township, len(streets)},
		{"3303", City, 0},         // not below
		{"330305", District, 0},   // not below
		{"33", Level(6), 0},       // no such level
		{"33030", Village, 0},     // malformed
		{"330399", Township, 0},   // unlisted
		{"110101001", Village, 0}, // no villages shipped there
	}
	for _, tt := range tests {
		got := tr.Descendants(tt.code, tt.level)
		if len(got) != tt.want {
			t.Errorf("Descendants(%q, %v): %d; want %d", tt.code, tt.level, len(got), tt.want)
		}
		for _, d := range got {
			if d.Level != tt.level || !strings.HasPrefix(d.Code, tt.code) {
				t.Errorf("Descendants(%q, %v) holds %+v", tt.code, tt.level, d)
			}
		}
		if !slices.IsSorted(codesOf(got)) {
			t.Errorf("Descendants(%q, %v) not sorted", tt.code, tt.level)
		}
	}
}

func TestResolve(t *testing.T) {
	tr := tree(t)
	tests := []struct {
		code    string
		want    Division
		invalid bool
	}{
		{code: "330305001", want: Division{Code: "330305001", Name: "北岙街道", Level: Township, ParentCode: "330305", Known: true}},
		{code: "330305001001", want: Division{Code: "330305001001", Name: "城中社区", Level: Village, ParentCode: "330305001", Known: true}},
		// Unlisted villages under listed townships, inside and outside the seed regions.
		{code: "330305001999", want: Division{Code: "330305001999", Level: Village, ParentCode: "330305001"}},
		{code: "110101001001", want: Division{Code: "110101001001", Level: Village, ParentCode: "110101001"}},
		{code: "330305999001", invalid: true}, // township unknown
		{code: "330305999", invalid: true},
		{code: "330399", invalid: true},
		{code: "3399", invalid: true},
		{code: "99", invalid: true},
		{code: "33030", invalid: true},
		{code: "33030500100x", invalid: true},
		{code: "", invalid: true},
	}
	for _, tt := range tests {
		got, err := tr.Resolve(tt.code)
		if tt.invalid {
			e := apperr.As(err)
			if e == nil || e.Code != apperr.Invalid || len(e.Fields) != 1 ||
				e.Fields[0].Field != "region_code" || e.Fields[0].Code != "region_code.unknown" {
				t.Errorf("Resolve(%q) = %+v, %v; want Invalid region_code.unknown", tt.code, got, err)
			}
			continue
		}
		if err != nil || got != tt.want {
			t.Errorf("Resolve(%q) = %+v, %v; want %+v", tt.code, got, err, tt.want)
		}
	}
}

// TestDataIntegrity checks the shipped data as the tree sees it.
func TestDataIntegrity(t *testing.T) {
	tr := tree(t)
	rows := 0
	for _, f := range []string{"provinces.csv", "cities.csv", "areas.csv", "streets.csv", "villages-seed-regions.csv"} {
		rows += len(csvCodes(t, f))
	}
	if len(tr.divisions) != rows {
		t.Errorf("tree holds %d divisions; the CSVs have %d rows", len(tr.divisions), rows)
	}

	seen := make(map[string]bool, len(tr.divisions))
	skipped, children := 0, 0
	for _, d := range tr.divisions {
		if seen[d.Code] {
			t.Errorf("duplicate code %s", d.Code)
		}
		seen[d.Code] = true
		if l, ok := LevelOf(d.Code); !ok || l != d.Level {
			t.Errorf("%s: level %v; code says %v, %v", d.Code, d.Level, l, ok)
		}
		if strings.TrimSpace(d.Name) == "" || !d.Known {
			t.Errorf("%s: name %q, known %v", d.Code, d.Name, d.Known)
		}
		children += len(tr.children[d.Code])
		if d.Level == Province {
			if d.ParentCode != "" {
				t.Errorf("province %s has parent %s", d.Code, d.ParentCode)
			}
			continue
		}
		// The parent exists, lies above, and is the nearest listed division above.
		p, ok := tr.Lookup(d.ParentCode)
		if !ok || p.Level >= d.Level || !tr.Contains(p.Code, d.Code) {
			t.Errorf("%s %s: parent %q is not a listed division above it", d.Code, d.Name, d.ParentCode)
			continue
		}
		for l := p.Level + 1; l < d.Level; l++ {
			if _, ok := tr.Lookup(d.Code[:l.codeLen()]); ok {
				t.Errorf("%s: parent %s skips listed %s", d.Code, p.Code, d.Code[:l.codeLen()])
			}
		}
		if p.Level != d.Level-1 {
			skipped++
		}
		if !slices.ContainsFunc(tr.Children(p.Code), func(c Division) bool { return c.Code == d.Code }) {
			t.Errorf("%s missing from Children(%s)", d.Code, p.Code)
		}
	}
	if children+len(tr.children[""]) != len(tr.divisions) {
		t.Errorf("children lists hold %d divisions; tree has %d", children+len(tr.children[""]), len(tr.divisions))
	}
	t.Logf("%d divisions, %d hung on a division more than one level up", len(tr.divisions), skipped)
}

// validFS is a tiny data set in the shipped format; tests damage one file at a time.
func validFS() fstest.MapFS {
	return fstest.MapFS{
		"divisions/provinces.csv": {Data: []byte("code,name\n42,\"湖北省\"\n")},
		"divisions/cities.csv":    {Data: []byte("code,name,provinceCode\n4202,\"黄石市\",42\n")},
		// The cities of 420102 and 429004 are deliberately absent, so 42 has
		// children from two files whose codes interleave.
		"divisions/areas.csv":                 {Data: []byte("code,name,cityCode,provinceCode\n420102,\"江岸区\",4201,42\n429004,\"仙桃市\",4290,42\n")},
		"divisions/streets.csv":               {Data: []byte("code,name,areaCode,provinceCode,cityCode\n429004001,\"沙嘴街道\",429004,42,4290\n")},
		"divisions/villages-seed-regions.csv": {Data: []byte("code,name,streetCode,provinceCode,cityCode,areaCode\n")},
	}
}

func TestLoadTreeMissingParent(t *testing.T) {
	tr, err := loadTree(validFS())
	if err != nil {
		t.Fatal(err)
	}
	d, ok := tr.Lookup("429004")
	if !ok || d.ParentCode != "42" {
		t.Errorf("Lookup(429004) = %+v, %v; want parent 42", d, ok)
	}
	if got, want := codesOf(tr.Children("42")), []string{"420102", "4202", "429004"}; !slices.Equal(got, want) {
		t.Errorf("Children(42) = %v; want %v", got, want)
	}
	if got, want := tr.Path("429004001"), "湖北省 仙桃市 沙嘴街道"; got != want {
		t.Errorf("Path = %q; want %q", got, want)
	}
	if got, want := codesOf(tr.Ancestors("429004001")), []string{"42", "429004"}; !slices.Equal(got, want) {
		t.Errorf("Ancestors = %v; want %v", got, want)
	}
}

func TestLoadTreeRejects(t *testing.T) {
	tests := []struct {
		name, file, data string
	}{
		{"duplicate code", "streets.csv", "code,name,areaCode\n429004001,\"沙嘴街道\",429004\n429004001,\"again\",429004\n"},
		{"wrong level for file", "cities.csv", "code,name,provinceCode\n420102,\"江岸区\",42\n"},
		{"malformed code", "cities.csv", "code,name,provinceCode\n42O1,\"武汉市\",42\n"},
		{"empty name", "cities.csv", "code,name,provinceCode\n4201,\" \",42\n"},
		{"parent column disagrees", "areas.csv", "code,name,cityCode\n420102,\"江岸区\",4202\n"},
		{"bad header", "provinces.csv", "name,code\n\"湖北省\",42\n"},
		{"empty file", "provinces.csv", ""},
		{"ragged row", "cities.csv", "code,name,provinceCode\n4201,\"武汉市\"\n"},
		{"bad quoting", "cities.csv", "code,name,provinceCode\n4201,\"武汉市,42\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fsys := validFS()
			fsys["divisions/"+tt.file] = &fstest.MapFile{Data: []byte(tt.data)}
			if tr, err := loadTree(fsys); err == nil {
				t.Errorf("loadTree accepted damaged %s (%d divisions)", tt.file, len(tr.divisions))
			}
		})
	}
	t.Run("missing file", func(t *testing.T) {
		fsys := validFS()
		delete(fsys, "divisions/areas.csv")
		if _, err := loadTree(fsys); err == nil {
			t.Error("loadTree accepted a data set without areas.csv")
		}
	})
}

func TestTreeConcurrentReads(t *testing.T) {
	tr := tree(t)
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			for range 200 {
				if _, err := tr.Resolve("330305001999"); err != nil {
					t.Error(err)
					return
				}
				tr.Children("330305")
				tr.Path("330305001001")
				tr.Descendants("330305", Village)
			}
		})
	}
	wg.Wait()
}

func BenchmarkLoadTree(b *testing.B) {
	var ms runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&ms)
	before := ms.HeapAlloc
	var tr *Tree
	b.ReportAllocs()
	for b.Loop() {
		var err error
		if tr, err = LoadTree(); err != nil {
			b.Fatal(err)
		}
	}
	b.StopTimer()
	runtime.GC()
	runtime.ReadMemStats(&ms)
	// Only the last tree is still reachable: this is what a server keeps.
	b.ReportMetric(float64(int64(ms.HeapAlloc)-int64(before))/(1<<20), "retained-MiB")
	runtime.KeepAlive(tr)
}

func BenchmarkResolve(b *testing.B) {
	tr := tree(b)
	for b.Loop() {
		if _, err := tr.Resolve("330305001999"); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkDescendants(b *testing.B) {
	tr := tree(b)
	for b.Loop() {
		if len(tr.Descendants("1306", Village)) == 0 {
			b.Fatal("no villages in 1306")
		}
	}
}
