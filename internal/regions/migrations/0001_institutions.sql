-- Institutions: every user and most records belong to one. Types are codes
-- (see institution.go); region_code is a division code (6, 9 or 12 digits).
CREATE TABLE institutions (
  id {{pk}},
  name TEXT NOT NULL,
  type TEXT NOT NULL,
  region_code TEXT NOT NULL,
  parent_id BIGINT REFERENCES institutions (id),
  address TEXT NOT NULL DEFAULT '',
  phone TEXT NOT NULL DEFAULT '',
  active BOOLEAN NOT NULL DEFAULT TRUE,
  created_at BIGINT NOT NULL,
  updated_at BIGINT NOT NULL
);
CREATE INDEX institutions_region ON institutions (region_code);
CREATE INDEX institutions_parent ON institutions (parent_id);
CREATE UNIQUE INDEX institutions_name ON institutions (region_code, name);
