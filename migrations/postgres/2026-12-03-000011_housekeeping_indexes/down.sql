DROP INDEX sessions_idle;
DROP INDEX sessions_expires;
DROP INDEX send_limits_last_sent;
DROP INDEX sends_sent_at;
