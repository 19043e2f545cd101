-- A tube's state changes four times (sealed, in transit, received,
-- resulted) and two indexes held it, so every one of those changes — and
-- on PostgreSQL every results update of a lab's day — rewrote an entry in
-- each of the table's seven indexes instead of updating the row in place
-- (PostgreSQL's HOT update needs every changed column to be outside all
-- indexes). No query reads tubes by campaign and state; a lab's list names
-- its lab and reads its tubes newest first, filtering the state.
DROP INDEX tubes_campaign_state;
DROP INDEX tubes_lab;
CREATE INDEX tubes_lab ON tubes (lab_id, id);
