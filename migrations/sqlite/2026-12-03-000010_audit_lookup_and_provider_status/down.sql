DROP TABLE provider_status;
DROP INDEX outbox_challenge;
DROP TABLE audit_destinations;
DROP INDEX audit_events_outcome;
DROP INDEX audit_events_event;
DROP INDEX audit_events_transaction;
DROP INDEX audit_events_request;
ALTER TABLE audit_events DROP COLUMN request_id;
