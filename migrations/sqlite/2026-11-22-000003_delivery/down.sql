DROP INDEX outbox_created;
ALTER TABLE outbox DROP COLUMN provider_ref;
ALTER TABLE outbox DROP COLUMN provider;
