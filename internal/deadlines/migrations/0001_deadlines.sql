-- Deadlines (督办): one row per time-bound duty, whatever module owns it.
-- subject_type/subject_id name the record the duty is about ("tube", "42");
-- title is a short description with no personal data (it shows in inboxes
-- and exports). dedupe_key makes "open the deadline of kind K for subject X"
-- idempotent; NULLs do not collide.
CREATE TABLE deadlines (
  id {{pk}},
  kind TEXT NOT NULL,
  subject_type TEXT NOT NULL,
  subject_id TEXT NOT NULL,
  title TEXT NOT NULL,
  region_code TEXT NOT NULL,
  institution_id BIGINT,
  due_at BIGINT NOT NULL,
  state TEXT NOT NULL CHECK (state IN ('open', 'met', 'overdue', 'escalated')),
  met_at BIGINT,
  overdue_at BIGINT,
  escalated_at BIGINT,
  created_at BIGINT NOT NULL,
  updated_at BIGINT NOT NULL,
  dedupe_key TEXT UNIQUE
);
-- The scheduler: "open (or overdue) ones due before now, earliest first".
CREATE INDEX deadlines_state_due ON deadlines (state, due_at);
-- The inbox: a region subtree by state, most urgent first.
CREATE INDEX deadlines_region_state_due ON deadlines (region_code, state, due_at);
CREATE INDEX deadlines_institution_state_due ON deadlines (institution_id, state, due_at);
-- Meet finds a subject's deadlines.
CREATE INDEX deadlines_subject ON deadlines (subject_type, subject_id, kind);

-- Every state change, with the app instance that made it: the history of a
-- duty, and the proof that each transition happened exactly once.
CREATE TABLE deadline_events (
  id {{pk}},
  deadline_id BIGINT NOT NULL REFERENCES deadlines (id),
  from_state TEXT NOT NULL,
  to_state TEXT NOT NULL,
  at BIGINT NOT NULL,
  by_instance TEXT NOT NULL
);
CREATE INDEX deadline_events_deadline ON deadline_events (deadline_id, id);
