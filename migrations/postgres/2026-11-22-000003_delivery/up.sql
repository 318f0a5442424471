-- Which provider took a message, and its id there (an SMS id, the SMTP queue answer).
ALTER TABLE outbox ADD COLUMN provider TEXT;
ALTER TABLE outbox ADD COLUMN provider_ref TEXT;
-- `otpgate outbox list` shows the newest messages first.
CREATE INDEX outbox_created ON outbox (created_at);
