package people

import (
	"context"
	"database/sql"
	"fmt"
	"io"
	"strings"

	"github.com/shaobing/shaobing/internal/apperr"
	"github.com/shaobing/shaobing/internal/audit"
	"github.com/shaobing/shaobing/internal/tabular"
)

// ImportHeaders are the columns of an import file, in template order.
var ImportHeaders = []string{"id_type", "id_number", "name", "phone", "region_code", "no_phone", "address", "tags"}

// importSpec accepts the English headers and the Chinese ones of registers
// kept by hand.
var importSpec = tabular.Import{
	Required: []string{"id_number", "name", "phone", "region_code"},
	Aliases: map[string]string{
		"证件类型": "id_type", "证件号码": "id_number", "身份证号": "id_number", "身份证号码": "id_number",
		"姓名": "name", "手机号": "phone", "手机号码": "phone", "联系电话": "phone", "电话": "phone",
		"区划代码": "region_code", "居住地区划代码": "region_code", "无手机": "no_phone",
		"地址": "address", "住址": "address", "现住址": "address", "标签": "tags",
	},
}

// idTypeNames maps the Chinese names of ID types found in registers to codes.
var idTypeNames = map[string]IDType{
	"居民身份证": IDResident, "身份证": IDResident, "护照": IDPassport,
	"港澳居民来往内地通行证": IDHKMacauPermit, "港澳通行证": IDHKMacauPermit,
	"台湾居民来往大陆通行证": IDTaiwanPermit, "台胞证": IDTaiwanPermit, "其他": IDOther,
}

// ImportResult reports a bulk registration: Accepted rows were registered
// (Updated of them were persons already registered); Rejected lists each bad
// row's problems with its spreadsheet row number.
type ImportResult struct {
	Accepted int                `json:"accepted"`
	Updated  int                `json:"updated"`
	Rejected []tabular.RowError `json:"rejected"`
}

// Import registers every good row of a CSV or .xlsx file and reports the bad
// ones; good rows are kept even when others are bad. It runs in one
// transaction: a problem with the file as a whole (wrong headers, too many
// bad rows) or a database failure writes nothing.
func (r *Registry) Import(ctx context.Context, src io.Reader, f tabular.Format) (ImportResult, error) {
	res := ImportResult{Rejected: []tabular.RowError{}}
	err := r.db.InTx(ctx, func(tx *sql.Tx) error {
		var entries []audit.Entry
		rejected, err := importSpec.Read(src, f, func(row int, rec tabular.Record) error {
			np, err := importRow(rec)
			if err != nil {
				return err
			}
			_, created, entry, err := r.register(ctx, tx, np)
			if err != nil {
				return err
			}
			entries = append(entries, entry)
			res.Accepted++
			if !created {
				res.Updated++
			}
			return nil
		})
		if err != nil {
			return err
		}
		res.Rejected = append(res.Rejected, rejected...)
		entries = append(entries, audit.Entry{Action: "person.import", ObjectType: "person",
			Detail: fmt.Sprintf("accepted=%d updated=%d rejected_rows=%d", res.Accepted, res.Updated, rejectedRows(rejected))})
		if err := r.log.RecordBatch(ctx, tx, entries); err != nil {
			return fmt.Errorf("people: audit import: %w", err)
		}
		return nil
	})
	if err != nil {
		return ImportResult{}, err
	}
	return res, nil
}

// importRow reads one row into a registration; cells that cannot be read at
// all are reported by field, the rest is left to validate.
func importRow(rec tabular.Record) (NewPerson, error) {
	var problems apperr.Problems
	np := NewPerson{
		IDType:     IDType(rec.Get("id_type")),
		IDNumber:   rec.Get("id_number"),
		Name:       rec.Get("name"),
		Phone:      rec.Get("phone"),
		RegionCode: rec.Get("region_code"),
		Address:    rec.Get("address"),
	}
	if t, ok := idTypeNames[string(np.IDType)]; ok {
		np.IDType = t
	}
	switch strings.ToLower(rec.Get("no_phone")) {
	case "", "0", "false", "no", "n", "否":
	case "1", "true", "yes", "y", "是":
		np.NoPhone = true
	default:
		problems.Add("no_phone", "no_phone.invalid", "write 1 or 0 (是 or 否)")
	}
	// An empty tags cell keeps a re-registered person's tags.
	if s := rec.Get("tags"); s != "" {
		np.Tags = []Tag{}
		for _, t := range strings.FieldsFunc(s, func(c rune) bool { return strings.ContainsRune(",;，；、| ", c) }) {
			np.Tags = append(np.Tags, Tag(t))
		}
	}
	return np, problems.Err()
}

// rejectedRows counts the distinct rows among row errors.
func rejectedRows(errs []tabular.RowError) int {
	n, last := 0, -1
	for _, e := range errs {
		if e.Row != last {
			n++
			last = e.Row
		}
	}
	return n
}
