-- A tube row is updated a dozen times: once per member registered, then
-- sealed, handed over, received and resulted. PostgreSQL updates it in
-- place (HOT, no index entries written) only when its page has room for
-- the new version; pages filled to the brim send each update to another
-- page with a new entry in every index. Half of each page is left free.
ALTER TABLE tubes SET (fillfactor = 50);
