-- The Capillary auth API (/auth/v1): brands (its tenants) and the sessions that
-- token/generate opens.

CREATE TABLE capillary_brands (
    brand_key                TEXT PRIMARY KEY NOT NULL,  -- the name, lower case
    name                     TEXT NOT NULL,              -- as the operator wrote it
    org_id                   BIGINT NOT NULL,            -- whose delivery settings and templates apply
    otp_max_count            BIGINT,                     -- OTPs per identifier per otp_timeout_minutes; NULL: no limit
    otp_timeout_minutes      BIGINT,
    max_otp_retries          BIGINT NOT NULL,
    otp_length               BIGINT NOT NULL,
    otp_validity_seconds     BIGINT NOT NULL,
    session_validity_seconds BIGINT NOT NULL,
    token_validity_seconds   BIGINT NOT NULL,
    key_validity_seconds     BIGINT NOT NULL,
    channels                 TEXT NOT NULL,              -- "sms,email"
    sms_template             TEXT,                       -- NULL: the organisation's template
    hash_key                 TEXT,                       -- NULL: the payload hash is not checked
    hash_window_seconds      BIGINT NOT NULL,
    created_at               BIGINT NOT NULL,
    updated_at               BIGINT NOT NULL
);

CREATE TABLE capillary_sessions (
    id               TEXT PRIMARY KEY NOT NULL,  -- "P-" + UUID
    brand_key        TEXT NOT NULL,
    web              BOOLEAN NOT NULL,
    identifier_type  TEXT NOT NULL,              -- MOBILE, EMAIL, USERNAME
    identifier_value TEXT NOT NULL,              -- normalised: digits, lower-case e-mail or login
    device_id        TEXT,
    user_id          BIGINT,
    created_at       BIGINT NOT NULL,
    expires_at       BIGINT NOT NULL,
    validated_at     BIGINT
);
CREATE INDEX capillary_sessions_expires ON capillary_sessions (expires_at);
