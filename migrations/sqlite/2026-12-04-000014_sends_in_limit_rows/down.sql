CREATE TABLE sends (
    id              TEXT PRIMARY KEY NOT NULL,
    destination_key TEXT NOT NULL,
    sent_at         BIGINT NOT NULL
);
CREATE INDEX sends_destination ON sends (destination_key, sent_at);
CREATE INDEX sends_sent_at ON sends (sent_at);

WITH RECURSIVE split (destination_key, rest, sent_at) AS (
        SELECT destination_key, recent_sends || ',', NULL FROM send_limits
        WHERE recent_sends <> ''
    UNION ALL
        SELECT destination_key, substr(rest, instr(rest, ',') + 1),
            CAST(substr(rest, 1, instr(rest, ',') - 1) AS INTEGER)
        FROM split WHERE rest <> '')
INSERT INTO sends (id, destination_key, sent_at)
    SELECT lower(hex(randomblob(16))), destination_key, sent_at FROM split
    WHERE sent_at IS NOT NULL;

ALTER TABLE send_limits DROP COLUMN sends_max;
ALTER TABLE send_limits DROP COLUMN sends_window_ms;
ALTER TABLE send_limits DROP COLUMN recent_sends;
