-- Bureau-wide settings: one row per key that has been changed from its
-- default (the defaults live in the code's registry, settings.go). Values are
-- text, validated per key on write.
CREATE TABLE settings (
  key TEXT PRIMARY KEY,
  value TEXT NOT NULL,
  updated_at BIGINT NOT NULL,
  updated_by TEXT NOT NULL
);
