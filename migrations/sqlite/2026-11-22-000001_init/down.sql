DROP TABLE audit_events;
DROP TABLE outbox;
DROP TABLE sessions;
DROP TABLE sends;
DROP TABLE send_limits;
DROP TABLE challenges;
DROP TABLE users;
