-- Housekeeping deletes in bounded batches; each batch finds its rows by index.
CREATE INDEX sends_sent_at ON sends (sent_at);
CREATE INDEX send_limits_last_sent ON send_limits (last_sent_at);
CREATE INDEX sessions_expires ON sessions (expires_at);
CREATE INDEX sessions_idle ON sessions ((last_seen_at + idle_timeout_ms));
