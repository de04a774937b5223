-- events: the reference for the job's first stage: one row per
-- deduplicated valid event, with user_key and session_key (docs/design.md §What every number means). It
-- reads the view `routed` (routed.sql) and runs in the reporting time zone's
-- session like it. DuckDB dialect.
WITH kept AS (
  SELECT *,
    CASE WHEN coalesce(user_id, '') <> '' THEN user_id ELSE 'anon:' || device_id END AS user_key
  FROM routed
  WHERE invalid_reason IS NULL
  QUALIFY row_number() OVER (PARTITION BY dt, event_id ORDER BY received_ms, filename, at_ms) = 1
),
gaps AS (
  SELECT *,
    CASE WHEN coalesce(session_id, '') = '' THEN
      CASE WHEN at_ms - lag(at_ms) OVER w > 1800000 OR lag(at_ms) OVER w IS NULL THEN 1 ELSE 0 END
    END AS new_session
  FROM kept
  WINDOW w AS (PARTITION BY dt, coalesce(session_id, '') = '', coalesce(product, ''), user_key ORDER BY at_ms, event_id)
),
numbered AS (
  SELECT *,
    sum(new_session) OVER (PARTITION BY dt, coalesce(session_id, '') = '', coalesce(product, ''), user_key
                           ORDER BY at_ms, event_id ROWS UNBOUNDED PRECEDING) AS session_no
  FROM gaps
),
sessions AS (
  SELECT *,
    min(at_ms) OVER (PARTITION BY dt, coalesce(session_id, '') = '', coalesce(product, ''), user_key, session_no) AS session_start
  FROM numbered
)
SELECT
  dt,
  event_id,
  epoch_ms(at_ms) AT TIME ZONE 'UTC' AS event_time,
  CASE WHEN client_ms IS NOT NULL THEN epoch_ms(client_ms) AT TIME ZONE 'UTC' END AS client_event_time,
  epoch_ms(received_ms) AT TIME ZONE 'UTC' AS received_at,
  event_name,
  nullif(user_id, '') AS user_id,
  nullif(device_id, '') AS device_id,
  nullif(session_id, '') AS session_id,
  nullif(product, '') AS product,
  nullif(platform, '') AS platform,
  nullif(app_version, '') AS app_version,
  nullif(country, '') AS country,
  properties,
  user_key,
  CASE WHEN coalesce(session_id, '') <> '' THEN 's:' || session_id
       ELSE 'i:' || coalesce(product, '') || '|' || user_key || '|' || strftime(epoch_ms(session_start), '%Y-%m-%dT%H:%M:%S.%gZ')
  END AS session_key,
  clock_skewed
FROM sessions
ORDER BY dt, event_name, user_key, at_ms, event_id
