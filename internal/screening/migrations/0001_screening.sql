-- Mass screening with pooled tubes (核酸筛查, 混采; DESIGN.md §5.1).
--
-- Scope columns: region_code and institution_id on every scoped table, read
-- through scope.Principal.Where. Specimens, recalls and coverage are placed
-- by the person's residence (a township user sees its residents wherever
-- they were sampled); tubes, batches and points by the sampling point (its
-- samplers see its work); a lab sees the tubes handed to it (lab_id).
-- Every timestamp is unix milliseconds UTC.

-- A campaign (筛查轮次) tests the residents of some regions for a pathogen.
-- region_code is the narrowest region containing all targeted regions.
CREATE TABLE campaigns (
  id {{pk}},
  name TEXT NOT NULL,
  pathogen TEXT NOT NULL,
  pool_size INTEGER NOT NULL CHECK (pool_size IN (1, 5, 10, 20)),
  starts_at BIGINT NOT NULL,
  ends_at BIGINT NOT NULL,
  results_due_at BIGINT NOT NULL,
  region_code TEXT NOT NULL,
  institution_id BIGINT REFERENCES institutions (id),
  closed_at BIGINT,
  created_at BIGINT NOT NULL,
  created_by BIGINT,
  updated_at BIGINT NOT NULL
);
CREATE INDEX campaigns_region ON campaigns (region_code, id);

-- The regions a campaign targets; a user sees the campaigns whose regions
-- overlap their scope (scope.Principal.WhereOverlaps).
CREATE TABLE campaign_regions (
  campaign_id BIGINT NOT NULL REFERENCES campaigns (id),
  region_code TEXT NOT NULL,
  PRIMARY KEY (campaign_id, region_code)
);
CREATE INDEX campaign_regions_region ON campaign_regions (region_code, campaign_id);

-- A sampling point (采样点) taking part in a campaign: an institution of type
-- sampling_point, its hours (HH:MM in the bureau's zone), how many people an
-- hour it can sample and how many samplers work there.
CREATE TABLE sampling_points (
  id {{pk}},
  campaign_id BIGINT NOT NULL REFERENCES campaigns (id),
  institution_id BIGINT NOT NULL REFERENCES institutions (id),
  name TEXT NOT NULL,
  region_code TEXT NOT NULL,
  address TEXT NOT NULL DEFAULT '',
  opens TEXT NOT NULL DEFAULT '07:00',
  closes TEXT NOT NULL DEFAULT '21:00',
  capacity_per_hour INTEGER NOT NULL DEFAULT 0,
  samplers INTEGER NOT NULL DEFAULT 0,
  created_at BIGINT NOT NULL,
  created_by BIGINT,
  UNIQUE (campaign_id, institution_id)
);
CREATE INDEX sampling_points_region ON sampling_points (region_code, id);
CREATE INDEX sampling_points_institution ON sampling_points (institution_id, id);

-- Time slots (错峰): a village or community (label: buildings, groups) is
-- called to a point at a time, so people do not queue early.
CREATE TABLE sampling_slots (
  id {{pk}},
  campaign_id BIGINT NOT NULL REFERENCES campaigns (id),
  sampling_point_id BIGINT NOT NULL REFERENCES sampling_points (id),
  region_code TEXT NOT NULL,
  label TEXT NOT NULL DEFAULT '',
  starts_at BIGINT NOT NULL,
  ends_at BIGINT NOT NULL,
  created_at BIGINT NOT NULL,
  created_by BIGINT
);
CREATE INDEX sampling_slots_point ON sampling_slots (sampling_point_id, starts_at);
CREATE INDEX sampling_slots_region ON sampling_slots (region_code, starts_at);

-- A box of sealed tubes handed to a lab (封箱转运); the lab scans it on arrival.
CREATE TABLE batches (
  id {{pk}},
  code TEXT NOT NULL UNIQUE,
  campaign_id BIGINT NOT NULL REFERENCES campaigns (id),
  sampling_point_id BIGINT NOT NULL REFERENCES sampling_points (id),
  institution_id BIGINT NOT NULL,
  region_code TEXT NOT NULL,
  lab_id BIGINT NOT NULL REFERENCES institutions (id),
  state TEXT NOT NULL CHECK (state IN ('in_transit', 'received')),
  tubes INTEGER NOT NULL,
  created_at BIGINT NOT NULL,
  created_by BIGINT,
  received_at BIGINT,
  received_by BIGINT
);
CREATE INDEX batches_lab ON batches (lab_id, state, id);
CREATE INDEX batches_point ON batches (sampling_point_id, id);

-- A tube (采样管), created by its first specimen with the campaign's pool
-- size as capacity. members counts its specimens; a full tube is sealed.
-- The result belongs to the tube; its members' results are read through it.
CREATE TABLE tubes (
  id {{pk}},
  code TEXT NOT NULL UNIQUE,
  campaign_id BIGINT NOT NULL REFERENCES campaigns (id),
  sampling_point_id BIGINT NOT NULL REFERENCES sampling_points (id),
  institution_id BIGINT NOT NULL,
  region_code TEXT NOT NULL,
  capacity INTEGER NOT NULL,
  members INTEGER NOT NULL DEFAULT 0,
  state TEXT NOT NULL CHECK (state IN ('open', 'sealed', 'in_transit', 'received', 'resulted')),
  batch_id BIGINT REFERENCES batches (id),
  lab_id BIGINT,
  result TEXT CHECK (result IN ('negative', 'positive', 'suspicious', 'invalid')),
  ct_orf1ab DOUBLE PRECISION,
  ct_n DOUBLE PRECISION,
  tested_at BIGINT,
  resulted_at BIGINT,
  resulted_by BIGINT,
  reported_at BIGINT,
  reported_by BIGINT,
  opened_at BIGINT NOT NULL,
  first_sampled_at BIGINT NOT NULL,
  sealed_at BIGINT,
  sealed_by BIGINT,
  received_at BIGINT
);
CREATE INDEX tubes_campaign_state ON tubes (campaign_id, state, id);
CREATE INDEX tubes_point ON tubes (sampling_point_id, id);
CREATE INDEX tubes_lab ON tubes (lab_id, state, id);
CREATE INDEX tubes_region ON tubes (region_code, id);
CREATE INDEX tubes_batch ON tubes (batch_id);

-- A specimen (采样记录): one person sampled into one tube. client_id is the
-- sampling app's id for the registration (idempotency); body_hash tells a
-- retry (same body) from a conflicting reuse. region_code, phone and no_phone
-- are what was given when sampled (a recall calls that phone); the registry
-- row is not rewritten by a sampler elsewhere. counted marks the specimen
-- that stands for its person in the campaign's coverage.
CREATE TABLE specimens (
  id {{pk}},
  client_id TEXT NOT NULL UNIQUE,
  body_hash TEXT NOT NULL,
  campaign_id BIGINT NOT NULL REFERENCES campaigns (id),
  sampling_point_id BIGINT NOT NULL REFERENCES sampling_points (id),
  tube_id BIGINT NOT NULL REFERENCES tubes (id),
  person_id BIGINT NOT NULL REFERENCES persons (id),
  region_code TEXT NOT NULL,
  institution_id BIGINT NOT NULL,
  phone TEXT NOT NULL DEFAULT '',
  no_phone BOOLEAN NOT NULL DEFAULT FALSE,
  counted BOOLEAN NOT NULL DEFAULT FALSE,
  sampled_at BIGINT NOT NULL,
  sampled_by BIGINT,
  created_at BIGINT NOT NULL
);
CREATE INDEX specimens_tube ON specimens (tube_id, id);
CREATE INDEX specimens_person ON specimens (person_id, sampled_at);
CREATE INDEX specimens_campaign_region ON specimens (campaign_id, region_code, id);
CREATE INDEX specimens_institution ON specimens (institution_id, id);

-- Who has been sampled in a campaign: one row per person, so coverage counts
-- people, not specimens. counted_specimen_id is the specimen that stands for
-- them; it is cleared when that tube is invalid, and the person's next
-- specimen takes its place.
CREATE TABLE campaign_persons (
  campaign_id BIGINT NOT NULL REFERENCES campaigns (id),
  person_id BIGINT NOT NULL REFERENCES persons (id),
  region_code TEXT NOT NULL,
  counted_specimen_id BIGINT,
  first_sampled_at BIGINT NOT NULL,
  PRIMARY KEY (campaign_id, person_id)
);

-- Coverage counters (应检尽检) per campaign and residence region, kept by the
-- writes that change them so a coverage page never scans specimens:
-- targeted residents, sampled people, people with a result, positives.
CREATE TABLE coverage (
  campaign_id BIGINT NOT NULL REFERENCES campaigns (id),
  region_code TEXT NOT NULL,
  targeted BIGINT NOT NULL DEFAULT 0,
  sampled BIGINT NOT NULL DEFAULT 0,
  resulted BIGINT NOT NULL DEFAULT 0,
  positive BIGINT NOT NULL DEFAULT 0,
  PRIMARY KEY (campaign_id, region_code)
);

-- Turnaround (sampling → result) per campaign, point region and bucket
-- (upper bound in hours; 0 for beyond the last bucket), counted in tubes.
CREATE TABLE turnaround (
  campaign_id BIGINT NOT NULL REFERENCES campaigns (id),
  region_code TEXT NOT NULL,
  bucket INTEGER NOT NULL,
  tubes BIGINT NOT NULL DEFAULT 0,
  PRIMARY KEY (campaign_id, region_code, bucket)
);

-- A recall (召回): a member of a positive, suspicious or invalid tube must be
-- found and sampled again on their own (单采单检). Placed by the person's
-- residence, so the township team that does the calling sees it.
CREATE TABLE recalls (
  id {{pk}},
  campaign_id BIGINT NOT NULL REFERENCES campaigns (id),
  tube_id BIGINT NOT NULL REFERENCES tubes (id),
  specimen_id BIGINT NOT NULL UNIQUE REFERENCES specimens (id),
  person_id BIGINT NOT NULL REFERENCES persons (id),
  region_code TEXT NOT NULL,
  institution_id BIGINT NOT NULL,
  reason TEXT NOT NULL CHECK (reason IN ('positive', 'suspicious', 'invalid')),
  state TEXT NOT NULL CHECK (state IN ('to_notify', 'notified', 'resampled', 'resulted')),
  due_at BIGINT NOT NULL,
  created_at BIGINT NOT NULL,
  notified_at BIGINT,
  notified_by BIGINT,
  resampled_at BIGINT,
  resample_specimen_id BIGINT REFERENCES specimens (id),
  resulted_at BIGINT
);
CREATE INDEX recalls_campaign_region ON recalls (campaign_id, region_code, id);
CREATE INDEX recalls_campaign_institution ON recalls (campaign_id, institution_id, id);
CREATE INDEX recalls_person ON recalls (person_id, campaign_id);
CREATE INDEX recalls_tube ON recalls (tube_id);
CREATE INDEX recalls_resample ON recalls (resample_specimen_id);

-- A preliminary positive (初筛阳性): the member of a positive single tube.
-- The tracing module picks these up as suspected cases (picked_up_at).
CREATE TABLE preliminary_positives (
  id {{pk}},
  campaign_id BIGINT NOT NULL REFERENCES campaigns (id),
  tube_id BIGINT NOT NULL REFERENCES tubes (id),
  specimen_id BIGINT NOT NULL UNIQUE REFERENCES specimens (id),
  person_id BIGINT NOT NULL REFERENCES persons (id),
  region_code TEXT NOT NULL,
  institution_id BIGINT NOT NULL,
  ct_orf1ab DOUBLE PRECISION,
  ct_n DOUBLE PRECISION,
  created_at BIGINT NOT NULL,
  picked_up_at BIGINT
);
CREATE INDEX preliminary_positives_region ON preliminary_positives (region_code, id);
