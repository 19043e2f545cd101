-- Registrations acknowledged but not yet filed (受理未归档). A registration
-- is acknowledged once its row here and its tube's new fill are committed:
-- that is the group commit a sampler waits for, and it writes a handful of
-- pages a batch. Filing it — the person in the registry, the specimen, the
-- campaign's sampled persons and coverage, the audit entries, about six
-- pages of indexes a registration — follows a moment later in a
-- transaction of its own, which deletes the row. id is the specimen's id,
-- taken from the specimens table's sequence when acknowledged; the row
-- keeps everything the filing needs, including who registered it and from
-- where (the audit entry names them).
CREATE TABLE specimen_queue (
  id INTEGER PRIMARY KEY, -- a rowid: the specimen's id
  client_id TEXT NOT NULL UNIQUE,
  body_hash TEXT NOT NULL,
  campaign_id BIGINT NOT NULL,
  sampling_point_id BIGINT NOT NULL,
  tube_id BIGINT NOT NULL,
  id_type TEXT NOT NULL,
  id_number TEXT NOT NULL,
  name TEXT NOT NULL,
  sex TEXT NOT NULL,
  birth_date TEXT,
  phone TEXT NOT NULL,
  no_phone BOOLEAN NOT NULL,
  region_code TEXT NOT NULL,
  sampled_at BIGINT NOT NULL,
  sampled_by BIGINT,
  created_at BIGINT NOT NULL,
  origin_user_id BIGINT,
  origin_username TEXT NOT NULL,
  origin_region TEXT NOT NULL,
  origin_addr TEXT NOT NULL,
  origin_agent TEXT NOT NULL
);
CREATE INDEX specimen_queue_tube ON specimen_queue (tube_id);
-- The specimens' AUTOINCREMENT counter hands out the ids (see
-- reserveSpecimenIDs); SQLite creates its row at the first specimen, so it
-- is made here for a database without any.
INSERT INTO sqlite_sequence (name, seq) SELECT 'specimens', COALESCE((SELECT MAX(id) FROM specimens), 0)
  WHERE NOT EXISTS (SELECT 1 FROM sqlite_sequence WHERE name = 'specimens');
