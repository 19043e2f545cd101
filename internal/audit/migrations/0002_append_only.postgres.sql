-- The audit log is append-only: UPDATE, DELETE and TRUNCATE raise. The
-- trigger is a safety net inside the database; production additionally
-- revokes the privileges from the application role (see README.md), since a
-- table owner can disable triggers.
CREATE FUNCTION audit_log_reject() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  RAISE EXCEPTION 'audit_log is append-only' USING ERRCODE = 'insufficient_privilege';
END;
$$;
-- split
CREATE TRIGGER audit_log_append_only
  BEFORE UPDATE OR DELETE OR TRUNCATE ON audit_log
  FOR EACH STATEMENT EXECUTE FUNCTION audit_log_reject();
