-- The sends to a destination move into its send-limit row, which an issue locks and
-- writes anyway: the times of its recent sends, in milliseconds, joined by commas, with
-- the longest window and the highest limit of the policies that counted them, which
-- say how many the row keeps (core::otp::sends). An issue reads them with the lock
-- and writes them back with its own send, instead of counting rows of `sends` and
-- inserting one: a round trip fewer each, and no index keyed by the destination to write.
ALTER TABLE send_limits ADD COLUMN recent_sends TEXT NOT NULL DEFAULT '';
ALTER TABLE send_limits ADD COLUMN sends_window_ms BIGINT NOT NULL DEFAULT 0;
ALTER TABLE send_limits ADD COLUMN sends_max BIGINT NOT NULL DEFAULT 0;

-- Every destination with a send gets a row (housekeeping may have removed an idle one
-- before its sends), then all its sends; the first issue to count them keeps what its
-- policy needs.
INSERT INTO send_limits (destination_key, last_sent_at)
    SELECT destination_key, max(sent_at) FROM sends GROUP BY destination_key
    ON CONFLICT (destination_key) DO NOTHING;
UPDATE send_limits SET recent_sends = recent.times
FROM (
    SELECT destination_key, string_agg(sent_at::text, ',' ORDER BY sent_at) AS times
    FROM sends GROUP BY destination_key) AS recent
WHERE send_limits.destination_key = recent.destination_key;

DROP TABLE sends;
