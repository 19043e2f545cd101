-- No query reads specimens by campaign and region or by institution: lists
-- and scope checks reach specimens through their tube, person or client id
-- (scope filters on region_code and institution_id apply after those). Yet
-- every registration paid for both indexes: one more index page per
-- sampling point and per village in each group-commit batch, written to
-- the WAL at every commit.
DROP INDEX specimens_campaign_region;
DROP INDEX specimens_institution;
