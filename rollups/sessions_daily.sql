-- sessions_daily: sessions per dt × product × platform, from the events
-- table. A session is counted under the product and platform of its first
-- event (earliest event_time, then smallest event_id); its length is its last
-- event_time minus its first, in seconds. Percentiles interpolate linearly
-- (DuckDB quantile_cont; Athena has only approx_percentile).
WITH ranked AS (
  SELECT dt, session_key, event_time,
         coalesce(nullif(product, ''), '(none)')  AS product,
         coalesce(nullif(platform, ''), '(none)') AS platform,
         row_number() OVER (PARTITION BY dt, session_key ORDER BY event_time, event_id) AS rn
  FROM events
),
s AS (
  SELECT dt, session_key,
         max(CASE WHEN rn = 1 THEN product END)  AS product,
         max(CASE WHEN rn = 1 THEN platform END) AS platform,
         count(*) AS events,
         (epoch_ms(max(event_time)) - epoch_ms(min(event_time))) / 1000.0 AS seconds
  FROM ranked
  GROUP BY 1, 2
)
SELECT
  dt, product, platform,
  count(*)                                 AS sessions,
  count(*) FILTER (WHERE events = 1)       AS bounced_sessions,
  avg(seconds)                             AS avg_session_seconds,
  quantile_cont(seconds, 0.5)              AS p50_session_seconds,
  quantile_cont(seconds, 0.9)              AS p90_session_seconds,
  sum(events) / count(*)::DOUBLE           AS events_per_session
FROM s
GROUP BY 1, 2, 3
ORDER BY 1, 2, 3
