-- otpgate's own API keys: `_ProxyDetails.AuthType` APIKEY with `APIKey` authenticates
-- a caller as the key's user. Only the key's SHA-256 is stored; the key is shown once.
CREATE TABLE api_keys (
    id           BIGSERIAL PRIMARY KEY,              -- never reused
    user_id      BIGINT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    name         TEXT NOT NULL,
    key_hash     TEXT NOT NULL UNIQUE,  -- SHA-256 of the key, hex
    created_at   BIGINT NOT NULL,
    expires_at   BIGINT,                -- NULL: never
    revoked_at   BIGINT,
    last_used_at BIGINT                 -- written at most once a minute
);
CREATE INDEX api_keys_user ON api_keys (user_id);
