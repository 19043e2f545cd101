-- Name-prefix search uses LIKE 'prefix%', which PostgreSQL answers from an
-- index under a non-C collation only with the pattern operator class.
CREATE INDEX persons_name ON persons (name text_pattern_ops);
