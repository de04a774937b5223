-- routed: every raw row with the day it counts on (docs/design.md §What every number means), the
-- reference for the job's routing and validation. It reads a view `raw` over
-- the raw Parquet objects (read_parquet(..., union_by_name = true,
-- filename = true)) and takes the reporting time zone from the session
-- (SET TimeZone = 'Pacific/Auckland'). Max lateness is the default 7 days.
-- at_ms is when the row counts (Unix ms); invalid_reason is NULL for valid
-- rows. DuckDB dialect.
WITH r AS (
  SELECT
    *,
    epoch_ms(event_time)  AS client_ms,
    epoch_ms(received_at) AS received_ms,
    epoch_ms(strptime(regexp_extract(filename, '(\d{4}/\d{2}/\d{2}/\d{2})/[^/]*$', 1), '%Y/%m/%d/%H')) AS hour_ms
  FROM raw
),
a AS (
  SELECT
    *,
    CASE
      WHEN received_ms IS NULL THEN hour_ms
      WHEN client_ms IS NULL
        OR client_ms < received_ms - 7 * 86400000
        OR client_ms > received_ms + 600000 THEN received_ms
      ELSE client_ms
    END AS at_ms,
    (received_ms IS NULL OR client_ms IS NULL
        OR client_ms < received_ms - 7 * 86400000
        OR client_ms > received_ms + 600000) AS clock_skewed,
    CASE
      WHEN coalesce(event_id, '') = '' THEN 'missing_event_id'
      WHEN received_ms IS NULL THEN 'missing_received_at'
      WHEN coalesce(event_name, '') = '' THEN 'missing_event_name'
      WHEN coalesce(user_id, '') = '' AND coalesce(device_id, '') = '' THEN 'missing_user'
    END AS invalid_reason
  FROM r
)
SELECT *, CAST(epoch_ms(at_ms) AT TIME ZONE 'UTC' AS DATE) AS dt FROM a
