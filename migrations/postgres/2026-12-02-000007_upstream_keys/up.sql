-- A user's own API key on the legacy server, put in _ProxyDetails when otpgate
-- forwards a call made with the user's otpgate session. Sealed (AES-256-GCM under
-- the message key), never stored in clear.
CREATE TABLE upstream_keys (
    user_id    BIGINT PRIMARY KEY NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    sealed     BYTEA NOT NULL,
    updated_at BIGINT NOT NULL
);
