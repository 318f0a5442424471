DROP INDEX audit_events_user;
CREATE INDEX audit_events_user ON audit_events (user_id, event, at);
DROP INDEX challenges_capillary_latest;
CREATE INDEX challenges_subject_latest ON challenges (subject, purpose, created_at);
