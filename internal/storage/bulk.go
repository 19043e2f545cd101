package storage

import (
	"context"
	"database/sql"
	"fmt"
	"strings"
)

// Columns describes the columns a statement writes or reads for many rows
// at once: their names and PostgreSQL types (BIGINT, INTEGER, TEXT or
// BOOLEAN). Rows are given as one []any per row, in the columns' order.
//
// The two databases want such statements in different shapes:
//   - PostgreSQL takes the whole batch in one statement reading one array
//     per column (unnest). Its text is the same whatever the batch size, so
//     it is parsed and planned once per connection; a multi-row VALUES list
//     is a new statement for every size, planned on every run, with
//     thousands of parameters to bind (the registration load test spent more
//     of the database's time planning than running them).
//   - SQLite is in-process, so a round trip per row costs nothing, while
//     parsing a VALUES list as long as the batch costs more than the writes:
//     an insert runs one prepared single-row statement per row. An insert
//     returning rows is one VALUES list (a result set per row costs
//     database/sql more than the parsing: 8,292 against 9,720
//     registrations a second in the load test), and so is With.
type Columns struct {
	names, types []string
}

// NewColumns returns the columns of specs, each "name TYPE".
func NewColumns(specs ...string) Columns {
	var c Columns
	for _, s := range specs {
		name, typ, ok := strings.Cut(s, " ")
		if !ok {
			panic("storage: column spec without a type: " + s)
		}
		switch typ {
		case "BIGINT", "INTEGER", "TEXT", "BOOLEAN":
		default:
			panic("storage: column " + name + " of unsupported type " + typ)
		}
		c.names = append(c.names, name)
		c.types = append(c.types, typ)
	}
	return c
}

// Prepend returns the columns of specs, each "name TYPE", followed by c.
func (c Columns) Prepend(specs ...string) Columns {
	p := NewColumns(specs...)
	p.names = append(p.names, c.names...)
	p.types = append(p.types, c.types...)
	return p
}

// Names returns the column names separated by commas.
func (c Columns) Names() string { return strings.Join(c.names, ", ") }

// With adds rows to a and returns "WITH name (columns) AS (…)", a common
// table expression of the rows for the statement that follows (a join, an
// UPDATE … FROM name): on PostgreSQL an unnest of one array per column, on
// SQLite a VALUES list (a must then be BulkArgs, and the statement's other
// parameters follow the rows').
func (c Columns) With(a *Args, d Dialect, name string, rows [][]any) (string, error) {
	head := "WITH " + name + " (" + c.Names() + ") AS "
	if d == Postgres {
		from, err := c.Unnest(a, rows)
		if err != nil {
			return "", err
		}
		return head + "(SELECT * FROM " + from + ")", nil
	}
	values, err := c.values(a, rows)
	if err != nil {
		return "", err
	}
	return head + "(" + values + ")", nil
}

// check returns an error if there are no rows (SQL has no empty VALUES
// list) or a row has not one value per column.
func (c Columns) check(rows [][]any) error {
	if len(rows) == 0 {
		return fmt.Errorf("storage: no rows for %s", c.Names())
	}
	for i, r := range rows {
		if len(r) != len(c.names) {
			return fmt.Errorf("storage: row %d has %d values for %d columns (%s)", i, len(r), len(c.names), c.Names())
		}
	}
	return nil
}

// values adds rows to a and returns "VALUES (?, …), …".
func (c Columns) values(a *Args, rows [][]any) (string, error) {
	var b strings.Builder
	b.WriteString("VALUES ")
	if err := c.check(rows); err != nil {
		return "", err
	}
	for i, r := range rows {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteByte('(')
		for j, v := range r {
			if j > 0 {
				b.WriteString(", ")
			}
			b.WriteString(a.Add(v))
		}
		b.WriteByte(')')
	}
	return b.String(), nil
}

// InList returns the condition "column is one of values": on PostgreSQL
// "column = ANY($k)" with one array parameter, a statement text the same
// for any number of values; on SQLite "column IN (?, …)". No values is a
// condition that is false.
func InList[T int64 | string](d Dialect, a *Args, column string, values []T) string {
	if len(values) == 0 {
		return "1 = 0"
	}
	if d == Postgres {
		typ := "TEXT[]"
		if _, ok := any(values).([]int64); ok {
			typ = "BIGINT[]"
		}
		return column + " = ANY(CAST(" + a.Add(values) + " AS " + typ + "))"
	}
	marks := make([]string, len(values))
	for i, v := range values {
		marks[i] = a.Add(v)
	}
	return column + " IN (" + strings.Join(marks, ", ") + ")"
}

// Unnest adds one array parameter per column to a, read from rows, and
// returns "unnest(CAST($k AS BIGINT[]), …)": a PostgreSQL row source with
// one row per element. Use it as "FROM "+Unnest(…)+" AS v ("+Names()+")".
func (c Columns) Unnest(a *Args, rows [][]any) (string, error) {
	if err := c.check(rows); err != nil {
		return "", err
	}
	parts := make([]string, len(c.names))
	for j, typ := range c.types {
		arr, err := c.array(j, rows)
		if err != nil {
			return "", err
		}
		parts[j] = "CAST(" + a.Add(arr) + " AS " + typ + "[])"
	}
	return "unnest(" + strings.Join(parts, ", ") + ")", nil
}

// array collects column j of rows into a slice the PostgreSQL driver sends
// as an array, NULLs included.
func (c Columns) array(j int, rows [][]any) (any, error) {
	var arr any
	var bad any
	switch c.types[j] {
	case "BIGINT", "INTEGER":
		arr, bad = collect(rows, j, func(v any) (int64, bool, bool) {
			switch v := v.(type) {
			case int64:
				return v, true, true
			case int:
				return int64(v), true, true
			case int32:
				return int64(v), true, true
			case sql.NullInt64:
				return v.Int64, v.Valid, true
			}
			return 0, false, v == nil
		})
	case "TEXT":
		arr, bad = collect(rows, j, func(v any) (string, bool, bool) {
			switch v := v.(type) {
			case string:
				return v, true, true
			case sql.NullString:
				return v.String, v.Valid, true
			}
			return "", false, v == nil
		})
	default: // BOOLEAN
		arr, bad = collect(rows, j, func(v any) (bool, bool, bool) {
			switch v := v.(type) {
			case bool:
				return v, true, true
			case sql.NullBool:
				return v.Bool, v.Valid, true
			}
			return false, false, v == nil
		})
	}
	if arr == nil {
		return nil, fmt.Errorf("storage: column %s (%s): unsupported value %T", c.names[j], c.types[j], bad)
	}
	return arr, nil
}

// collect reads column j of rows through get, which returns a value,
// whether it is not NULL, and whether its type fits the column. It
// returns the values as pointers (nil for NULL), or nil and the first
// value that does not fit.
func collect[T any](rows [][]any, j int, get func(any) (T, bool, bool)) (any, any) {
	vals, out := make([]T, len(rows)), make([]*T, len(rows))
	for i, r := range rows {
		v, valid, ok := get(r[j])
		if !ok {
			return nil, r[j]
		}
		if valid {
			vals[i] = v
			out[i] = &vals[i]
		}
	}
	return out, nil
}

// Insert inserts rows into table; tail follows the rows (an ON CONFLICT
// clause, or nothing).
func (c Columns) Insert(ctx context.Context, tx *sql.Tx, d Dialect, table, tail string, rows [][]any) error {
	return c.InsertReturning(ctx, tx, d, table, tail, rows, nil)
}

// InsertReturning inserts rows into table like Insert; tail then ends with a
// RETURNING clause, and scan is called once for each row returned (in no
// promised order).
func (c Columns) InsertReturning(ctx context.Context, tx *sql.Tx, d Dialect, table, tail string, rows [][]any, scan func(*sql.Rows) error) error {
	if len(rows) == 0 {
		return nil
	}
	if err := c.check(rows); err != nil {
		return err
	}
	head := "INSERT INTO " + table + " (" + c.Names() + ") "
	if d == SQLite && scan == nil {
		return ExecEach(ctx, tx, head+"VALUES ("+strings.TrimSuffix(strings.Repeat("?, ", len(c.names)), ", ")+") "+tail, rows)
	}
	if d == SQLite {
		// A statement returning rows is one VALUES list: a query per row
		// costs database/sql a result set each, more than the parsing.
		a := d.BulkArgs()
		values, err := c.values(&a, rows)
		if err != nil {
			return err
		}
		res, err := tx.QueryContext(ctx, head+values+" "+tail, a.Values()...)
		if err != nil {
			return err
		}
		return EachRow(res, scan)
	}
	var a Args
	from, err := c.Unnest(&a, rows)
	if err != nil {
		return err
	}
	if scan == nil {
		_, err = tx.ExecContext(ctx, head+"SELECT * FROM "+from+" "+tail, a.Values()...)
		return err
	}
	res, err := tx.QueryContext(ctx, head+"SELECT * FROM "+from+" "+tail, a.Values()...)
	if err != nil {
		return err
	}
	return EachRow(res, scan)
}

// ExecEach prepares query once and runs it with each row's values: on
// SQLite, where a round trip costs nothing, cheaper than one statement
// listing every row.
func ExecEach(ctx context.Context, tx *sql.Tx, query string, rows [][]any) error {
	if len(rows) == 0 {
		return nil
	}
	stmt, err := tx.PrepareContext(ctx, query)
	if err != nil {
		return err
	}
	defer stmt.Close()
	for _, r := range rows {
		if _, err := stmt.ExecContext(ctx, r...); err != nil {
			return err
		}
	}
	return nil
}

// EachRow calls scan for each of rows, closes them and returns the first
// error, scan's or the rows'.
func EachRow(rows *sql.Rows, scan func(*sql.Rows) error) error {
	defer rows.Close()
	for rows.Next() {
		if err := scan(rows); err != nil {
			return err
		}
	}
	return rows.Err()
}
