-- The latest challenge of a Capillary session (challenges::latest_for_subject):
-- found by subject and purpose, newest first, without a scan.
CREATE INDEX challenges_subject_latest ON challenges (subject, purpose, created_at);
