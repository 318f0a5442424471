-- TwoFactor: stored configurations, the numeric Id callers see, and what a validation
-- hands back.

CREATE TABLE twofactor_configs (
    id                       BIGINT PRIMARY KEY NOT NULL,  -- TwoFactorConfigurationId
    name                     TEXT NOT NULL,
    code_length              BIGINT NOT NULL,
    expiry_seconds           BIGINT NOT NULL,
    max_attempts             BIGINT NOT NULL,
    max_sms_count            BIGINT NOT NULL,
    max_sms_interval_seconds BIGINT NOT NULL,
    return_code              BOOLEAN NOT NULL,             -- OtpCode may be returned to the caller
    sms_template             TEXT,                         -- NULL: the organisation's template
    created_at               BIGINT NOT NULL
);

ALTER TABLE challenges ADD COLUMN numeric_id BIGINT;
ALTER TABLE challenges ADD COLUMN change_request_id TEXT;
CREATE UNIQUE INDEX challenges_numeric_id ON challenges (numeric_id);
-- Numeric ids without a hot row: a sequence does not wait for other transactions.
CREATE SEQUENCE challenge_numeric_id;
