-- Times are UTC milliseconds since the Unix epoch (BIGINT), the same on every backend.

CREATE TABLE users (
    id            BIGINT PRIMARY KEY NOT NULL,  -- the directory's numeric UserId
    login_uid     TEXT NOT NULL UNIQUE,         -- LoginUID
    login_name    TEXT NOT NULL,                -- the form login (Frm_UID), as provisioned
    login_key     TEXT NOT NULL UNIQUE,         -- login_name trimmed and lower-cased, for look-ups
    user_name     TEXT NOT NULL,
    email         TEXT NOT NULL,
    email_key     TEXT NOT NULL,                -- e-mail trimmed and lower-cased, '' when none
    mobile        TEXT NOT NULL,
    country_code  TEXT NOT NULL,
    org_id        BIGINT NOT NULL,
    org_name      TEXT NOT NULL,
    domain_id     BIGINT NOT NULL,
    password_hash TEXT,                         -- Argon2id PHC string; NULL: no password login
    profile       TEXT NOT NULL,                -- JSON object of the LoginApp profile fields
    created_at    BIGINT NOT NULL
);
CREATE UNIQUE INDEX users_email_key ON users (email_key) WHERE email_key <> '';

CREATE TABLE challenges (
    id                 TEXT PRIMARY KEY NOT NULL,  -- transaction id: UUID v4, lower case
    reference          TEXT NOT NULL,              -- short code shown in the message
    subject            TEXT NOT NULL,              -- who the code is for, e.g. 'user:836'
    purpose            TEXT NOT NULL,
    user_id            BIGINT REFERENCES users (id) ON DELETE CASCADE,
    org_id             BIGINT NOT NULL,
    channels           TEXT NOT NULL,              -- comma-separated: email,sms
    destination_masked TEXT NOT NULL,
    device_id          TEXT,
    code_hash          BYTEA NOT NULL,              -- HMAC-SHA-256 of the code under the server key
    created_at         BIGINT NOT NULL,
    expires_at         BIGINT NOT NULL,
    attempts           BIGINT NOT NULL,
    max_attempts       BIGINT NOT NULL,
    consumed_at        BIGINT,
    superseded_at      BIGINT
);
-- At most one open challenge per subject and purpose: a new one supersedes the old.
CREATE UNIQUE INDEX challenges_open ON challenges (subject, purpose)
    WHERE consumed_at IS NULL AND superseded_at IS NULL;
CREATE INDEX challenges_expires ON challenges (expires_at);

CREATE TABLE send_limits (
    destination_key TEXT PRIMARY KEY NOT NULL,  -- SHA-256 of the normalised destination
    last_sent_at    BIGINT NOT NULL
);

CREATE TABLE sends (
    id              TEXT PRIMARY KEY NOT NULL,
    destination_key TEXT NOT NULL,
    sent_at         BIGINT NOT NULL
);
CREATE INDEX sends_destination ON sends (destination_key, sent_at);

CREATE TABLE sessions (
    token_hash      TEXT PRIMARY KEY NOT NULL,  -- SHA-256 of the token, hex
    user_id         BIGINT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    device_id       TEXT,
    created_at      BIGINT NOT NULL,
    expires_at      BIGINT NOT NULL,
    last_seen_at    BIGINT NOT NULL,
    idle_timeout_ms BIGINT NOT NULL
);
CREATE INDEX sessions_user ON sessions (user_id);

CREATE TABLE outbox (
    id                 TEXT PRIMARY KEY NOT NULL,
    challenge_id       TEXT REFERENCES challenges (id) ON DELETE SET NULL,
    channel            TEXT NOT NULL,            -- email | sms
    destination        TEXT NOT NULL,
    destination_masked TEXT NOT NULL,
    payload            BYTEA,                     -- sealed message (AES-256-GCM); NULL once final
    state              TEXT NOT NULL,            -- queued | sending | sent | failed
    attempts           BIGINT NOT NULL,
    next_attempt_at    BIGINT NOT NULL,
    lease_until        BIGINT,
    claimed_by         TEXT,
    last_error         TEXT,
    created_at         BIGINT NOT NULL,
    updated_at         BIGINT NOT NULL
);
CREATE INDEX outbox_due ON outbox (state, next_attempt_at);

CREATE TABLE audit_events (
    id                 TEXT PRIMARY KEY NOT NULL,
    at                 BIGINT NOT NULL,
    event              TEXT NOT NULL,   -- otp.generate | otp.verify | login.password
    outcome            TEXT NOT NULL,   -- ok, or the error's stable name
    user_id            BIGINT,
    transaction_id     TEXT,
    destination_masked TEXT,
    channel            TEXT
);
CREATE INDEX audit_events_at ON audit_events (at);
-- Failed logins of a user within a window (the login lockout).
CREATE INDEX audit_events_user ON audit_events (user_id, event, at);
