CREATE TABLE sends (
    id              TEXT PRIMARY KEY NOT NULL,
    destination_key TEXT NOT NULL,
    sent_at         BIGINT NOT NULL
);
CREATE INDEX sends_destination ON sends (destination_key, sent_at);
CREATE INDEX sends_sent_at ON sends (sent_at);

INSERT INTO sends (id, destination_key, sent_at)
    SELECT gen_random_uuid()::text, destination_key, sent_at::bigint
    FROM send_limits, unnest(string_to_array(recent_sends, ',')) AS sent_at
    WHERE recent_sends <> '';

ALTER TABLE send_limits DROP COLUMN sends_max;
ALTER TABLE send_limits DROP COLUMN sends_window_ms;
ALTER TABLE send_limits DROP COLUMN recent_sends;
