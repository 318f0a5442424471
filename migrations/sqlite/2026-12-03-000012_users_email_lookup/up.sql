-- Look-ups by e-mail. The unique index on email_key is partial (empty keys may
-- repeat), and a planner cannot use it for `email_key = ?` in a statement prepared
-- before the value is known: SQLite's cached statements and PostgreSQL's generic
-- plans read the whole table instead.
CREATE INDEX users_email_lookup ON users (email_key);
