-- Failed password logins, counted by the login as given (known or not, so answers are
-- alike) and by that login from one client address. Keys are SHA-256 hex; no login
-- name or address is stored. Rows older than the lockout window are pruned.
CREATE TABLE login_failures (
    id  BIGSERIAL PRIMARY KEY,
    key TEXT NOT NULL,
    at  BIGINT NOT NULL
);
CREATE INDEX login_failures_key_at ON login_failures (key, at);
CREATE INDEX login_failures_at ON login_failures (at);
