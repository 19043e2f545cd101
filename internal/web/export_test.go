package web

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/shaobing/shaobing/internal/apperr"
	"github.com/shaobing/shaobing/internal/tabular"
)

func TestExport(t *testing.T) {
	shanghai := time.FixedZone("CST", 8*3600)
	s := &Shell{Log: slog.New(slog.NewTextHandler(io.Discard, nil)),
		Zone: func(ctx context.Context) *time.Location { return shanghai },
		Now:  func() time.Time { return time.Date(2026, 3, 1, 17, 30, 0, 0, time.UTC) }}
	cols := []tabular.Column{{Header: "ID", Kind: tabular.Number}, {Header: "at", Kind: tabular.Time}}
	at := time.Date(2026, 3, 1, 16, 0, 0, 0, time.UTC)
	boom := errors.New("boom")
	tests := []struct {
		name        string
		format      string
		rows        func(f tabular.Format, write func([]any) error) error
		wantErr     error
		wantBody    string // contained in the CSV
		wantHeaders bool
	}{
		{"rows in the bureau zone", "csv", func(_ tabular.Format, w func([]any) error) error { return w([]any{1, at}) }, nil, "1,2026-03-02 00:00:00", true},
		{"rows get the format asked for", "xlsx", func(f tabular.Format, w func([]any) error) error {
			if f != tabular.XLSX {
				return fmt.Errorf("rows got format %q", f)
			}
			return nil
		}, nil, "", true},
		{"no rows is a header-only file", "csv", func(_ tabular.Format, w func([]any) error) error { return nil }, nil, "ID,at", true},
		{"error before the first row is returned", "csv", func(_ tabular.Format, w func([]any) error) error { return boom }, boom, "", false},
		{"unknown format", "pdf", func(_ tabular.Format, w func([]any) error) error { return nil }, apperr.New(apperr.Invalid, ""), "", false},
		{"error after rows went out ends the file", "csv", func(_ tabular.Format, w func([]any) error) error {
			if err := w([]any{1, at}); err != nil {
				return err
			}
			return boom
		}, nil, "1,2026-03-02", true},
		{"xlsx error before close is still an error", "xlsx", func(_ tabular.Format, w func([]any) error) error {
			if err := w([]any{1, at}); err != nil {
				return err
			}
			return boom
		}, boom, "", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rec := httptest.NewRecorder()
			r := httptest.NewRequest(http.MethodGet, "/x/export?format="+tt.format, nil)
			err := s.Export(rec, r, "people", "人员", cols, tt.rows)
			switch {
			case tt.wantErr == nil && err != nil:
				t.Fatalf("err = %v", err)
			case tt.wantErr != nil && apperr.As(tt.wantErr) != nil && apperr.CodeOf(err) != apperr.CodeOf(tt.wantErr):
				t.Fatalf("err = %v; want code %s", err, apperr.CodeOf(tt.wantErr))
			case tt.wantErr != nil && apperr.As(tt.wantErr) == nil && !errors.Is(err, tt.wantErr):
				t.Fatalf("err = %v; want %v", err, tt.wantErr)
			}
			cd := rec.Header().Get("Content-Disposition")
			if !tt.wantHeaders {
				if cd != "" || rec.Body.Len() != 0 {
					t.Fatalf("a failed export sent %q and %d bytes", cd, rec.Body.Len())
				}
				return
			}
			want := `attachment; filename="people-20260302-0130.` + tt.format + `"; filename*=UTF-8''people-20260302-0130.` + tt.format
			if cd != want {
				t.Errorf("Content-Disposition = %s; want %s", cd, want)
			}
			if cc := rec.Header().Get("Cache-Control"); cc != "no-store" {
				t.Errorf("Cache-Control = %q", cc)
			}
			if !strings.Contains(rec.Body.String(), tt.wantBody) {
				t.Errorf("body %q lacks %q", rec.Body.String(), tt.wantBody)
			}
		})
	}
}

func TestAttachment(t *testing.T) {
	tests := []struct{ name, want string }{
		{"audit-log-20260301-0930.csv", `attachment; filename="audit-log-20260301-0930.csv"; filename*=UTF-8''audit-log-20260301-0930.csv`},
		{"人员 \"a\".xlsx", `attachment; filename="__ _a_.xlsx"; filename*=UTF-8''%E4%BA%BA%E5%91%98%20%22a%22.xlsx`},
	}
	for _, tt := range tests {
		if got := attachment(tt.name); got != tt.want {
			t.Errorf("attachment(%q) = %s; want %s", tt.name, got, tt.want)
		}
	}
}
