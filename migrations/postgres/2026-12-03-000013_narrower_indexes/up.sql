-- Only Capillary asks for the latest challenge of a subject, open or not
-- (challenges::latest_capillary). The index now holds Capillary's challenges alone, so
-- that the issue and the verify of every Summit and TwoFactor code stop writing to it.
-- The statement names the purpose as a literal, which a partial index needs to be
-- chosen for a statement prepared before its values are known.
DROP INDEX challenges_subject_latest;
CREATE INDEX challenges_capillary_latest ON challenges (subject, created_at)
    WHERE purpose = 'capillary';

-- A user's audit, newest first (`otpgate audit --user`). Keyed by the user and the
-- time only, the events of one request (an issue and its delivery, a verify) are
-- written side by side instead of once per kind of event.
DROP INDEX audit_events_user;
CREATE INDEX audit_events_user ON audit_events (user_id, at);
