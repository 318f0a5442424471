-- `otpgate audit`: every filter it offers is answered from an index.
-- The request that caused an event (its X-Request-Id, or the id it was given).
ALTER TABLE audit_events ADD COLUMN request_id TEXT;
CREATE INDEX audit_events_request ON audit_events (request_id);
CREATE INDEX audit_events_transaction ON audit_events (transaction_id);
-- --event (with or without --outcome) and --outcome alone, each within a time range.
CREATE INDEX audit_events_event ON audit_events (event, outcome, at);
CREATE INDEX audit_events_outcome ON audit_events (outcome, at);
-- The destinations of an event, as keyed hashes (HMAC of the destination as the send
-- limits normalise it, under a key derived from secrets.otp_key): `--destination`
-- finds the events without the audit holding an address. An event may have several
-- destinations (e-mail and SMS), hence a row per destination.
CREATE TABLE audit_destinations (
    destination_key TEXT NOT NULL,
    at              BIGINT NOT NULL,
    event_id        TEXT NOT NULL REFERENCES audit_events (id) ON DELETE CASCADE,
    transaction_id  TEXT,
    PRIMARY KEY (destination_key, at, event_id)
);
CREATE INDEX audit_destinations_event ON audit_destinations (event_id);
-- The deliveries of a code, for `otpgate audit` ("delivered by whom, when").
CREATE INDEX outbox_challenge ON outbox (challenge_id);
-- What each delivery provider last did, as the dispatchers saw it (written at most once
-- a second per provider and process), for `otpgate status`. Errors are scrubbed of
-- destinations and codes before they are kept.
CREATE TABLE provider_status (
    provider        TEXT PRIMARY KEY NOT NULL,
    last_success_at BIGINT,
    last_failure_at BIGINT,
    last_error      TEXT,
    failures        BIGINT NOT NULL,  -- failures since the last success
    cooling_until   BIGINT,
    updated_at      BIGINT NOT NULL
);
