package people

import "github.com/shaobing/shaobing/internal/tabular"

// ExportTable is the one layout of a people export, shared by the web and
// API download and the command line: the columns, headed in the language of
// t, and the row of a person. The row is masked (DESIGN.md: exports never
// carry full ID or phone numbers); labels are translated by t.
func ExportTable(t func(key string) string) ([]tabular.Column, func(Person) []any) {
	cols := []tabular.Column{
		{Header: "ID", Kind: tabular.Number},
		{Header: t("people.id_type")},
		{Header: t("people.id_number")},
		{Header: t("people.name")},
		{Header: t("people.sex")},
		{Header: t("people.age"), Kind: tabular.Number},
		{Header: t("people.phone")},
		{Header: t("people.address")},
		{Header: t("people.region_code")},
		{Header: t("people.region")},
		{Header: t("people.tags")},
		{Header: t("common.created_at"), Kind: tabular.Time},
		{Header: t("common.updated_at"), Kind: tabular.Time},
	}
	row := func(p Person) []any {
		v := p.Masked()
		var age any
		if v.Age != nil {
			age = *v.Age
		}
		phone := v.Phone
		if v.NoPhone {
			phone = t("people.no_phone")
		}
		return []any{v.ID, t("people.id_type." + string(v.IDType)), v.IDNumber, v.Name, sexLabel(t, v.Sex), age,
			phone, v.Address, v.RegionCode, v.RegionName, tagLabels(t, v.Tags), v.CreatedAt, v.UpdatedAt}
	}
	return cols, row
}
