-- Failed sign-ins per client address, for the sliding-window throttle
-- (see throttle.go). A row is one failure; rows older than the window are
-- pruned as the client fails again and at each successful sign-in. A
-- throttled client's refused attempts add no rows, so the table holds at
-- most the limit's worth of rows per recently failing address.
CREATE TABLE login_failures (
  client_key TEXT NOT NULL,
  at BIGINT NOT NULL
);
CREATE INDEX login_failures_client ON login_failures (client_key, at);
CREATE INDEX login_failures_at ON login_failures (at);

-- Browsers a user has signed in with before: the device cookie's SHA-256
-- (hex) and the user. Such a browser is not held back by the account lock
-- that failures from elsewhere set; its own failures are counted here and
-- too many make it untrusted again (the row is deleted).
CREATE TABLE trusted_devices (
  device TEXT NOT NULL,
  user_id BIGINT NOT NULL REFERENCES users (id),
  created_at BIGINT NOT NULL,
  last_login_at BIGINT NOT NULL,
  failures INTEGER NOT NULL DEFAULT 0,
  PRIMARY KEY (device, user_id)
);
CREATE INDEX trusted_devices_user ON trusted_devices (user_id);
CREATE INDEX trusted_devices_last_login ON trusted_devices (last_login_at);
