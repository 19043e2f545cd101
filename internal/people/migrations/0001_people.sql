-- The person registry (DESIGN.md §4). A person is found by (id_type,
-- id_number): registering the same person again updates this row.
-- region_code is the residence (a 6–12 digit division code); institution_id
-- is the institution that first registered the person, which is what an
-- institution-scoped user sees. tags is a sorted comma list of tag codes.
-- created_by/updated_by are user ids (NULL for the system); the users table
-- belongs to another module, so they carry no foreign key.
CREATE TABLE persons (
  id {{pk}},
  id_type TEXT NOT NULL,
  id_number TEXT NOT NULL,
  name TEXT NOT NULL,
  sex TEXT NOT NULL DEFAULT '',
  birth_date TEXT,
  phone TEXT NOT NULL DEFAULT '',
  no_phone BOOLEAN NOT NULL DEFAULT FALSE,
  address TEXT NOT NULL DEFAULT '',
  region_code TEXT NOT NULL,
  institution_id BIGINT REFERENCES institutions (id),
  tags TEXT NOT NULL DEFAULT '',
  created_at BIGINT NOT NULL,
  updated_at BIGINT NOT NULL,
  created_by BIGINT,
  updated_by BIGINT,
  UNIQUE (id_type, id_number)
);
-- Scoped lists are a range on region_code (or one institution), newest first.
CREATE INDEX persons_region ON persons (region_code, id);
CREATE INDEX persons_institution ON persons (institution_id, id);
-- Search by an exact ID number of any type, or an exact phone number.
CREATE INDEX persons_id_number ON persons (id_number);
CREATE INDEX persons_phone ON persons (phone);
