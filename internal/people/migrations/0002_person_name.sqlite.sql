-- Name-prefix search uses LIKE, which SQLite can answer from an index only
-- when the index uses the same (case-insensitive) collation as LIKE.
CREATE INDEX persons_name ON persons (name COLLATE NOCASE);
