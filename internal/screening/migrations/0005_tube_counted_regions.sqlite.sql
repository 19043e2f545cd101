-- The residence of each member of a tube who counts in coverage, one
-- region code and a space per member, kept by the registration batch that
-- adds the member. A tube's result adds its members to the coverage
-- counters of their residences; reading them from the tube row the result
-- already locks, instead of joining the tube's specimens, took the
-- largest statement out of a lab's import (about 100 ms of every
-- 5,000-tube chunk over 10 million specimens on PostgreSQL). An invalid
-- result empties it, as its members stop counting.
ALTER TABLE tubes ADD COLUMN counted_regions TEXT NOT NULL DEFAULT '';
UPDATE tubes SET counted_regions = COALESCE((SELECT group_concat(s.region_code || ' ', '') FROM specimens s
  WHERE s.tube_id = tubes.id AND s.counted = TRUE), '');
