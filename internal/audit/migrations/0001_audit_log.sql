-- The audit log (DESIGN.md §6): one row per write and per read or search of
-- personal data. Rows are chained: hash = SHA-256(prev_hash || canonical
-- fields), so a changed, removed or re-ordered row shows in audit.Verify.
-- ids are assigned by the application (last id + 1 under the chain lock), so
-- they are gap-free and a missing id means a removed row.
-- No foreign keys: the log must outlive and never block the rows it names.
CREATE TABLE audit_log (
  id {{pk}},
  at BIGINT NOT NULL,
  user_id BIGINT,
  username TEXT NOT NULL,
  action TEXT NOT NULL,
  object_type TEXT NOT NULL DEFAULT '',
  object_id TEXT NOT NULL DEFAULT '',
  outcome TEXT NOT NULL,
  detail TEXT NOT NULL DEFAULT '',
  client_addr TEXT NOT NULL DEFAULT '',
  user_agent TEXT NOT NULL DEFAULT '',
  region_code TEXT NOT NULL DEFAULT '',
  prev_hash TEXT NOT NULL,
  hash TEXT NOT NULL
);
CREATE INDEX audit_log_region ON audit_log (region_code, id);
CREATE INDEX audit_log_at ON audit_log (at);
CREATE INDEX audit_log_user ON audit_log (username, id);
CREATE INDEX audit_log_object ON audit_log (object_type, object_id, id);
