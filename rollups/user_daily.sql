-- user_daily: one row per dt × product × user_key, from the events table.
-- platform is the one with the most events that day (ties: alphabetically
-- first); is_new is true on the first dt the person was ever seen in the
-- product (over every day in the events table).
WITH e AS (
  SELECT dt,
         coalesce(nullif(product, ''), '(none)')  AS product,
         coalesce(nullif(platform, ''), '(none)') AS platform,
         user_key, session_key, event_time
  FROM events
),
per_platform AS (
  SELECT dt, product, user_key, platform, count(*) AS n
  FROM e GROUP BY 1, 2, 3, 4
),
top_platform AS (
  SELECT dt, product, user_key, platform
  FROM (
    SELECT *, row_number() OVER (PARTITION BY dt, product, user_key ORDER BY n DESC, platform) AS rk
    FROM per_platform
  ) t
  WHERE rk = 1
),
first_seen AS (
  SELECT product, user_key, min(dt) AS first_dt FROM e GROUP BY 1, 2
)
SELECT
  e.dt, e.product, e.user_key,
  tp.platform,
  count(*)                      AS events,
  count(DISTINCT e.session_key) AS sessions,
  min(e.event_time)             AS first_event_at,
  max(e.event_time)             AS last_event_at,
  (fs.first_dt = e.dt)          AS is_new
FROM e
JOIN top_platform tp ON tp.dt = e.dt AND tp.product = e.product AND tp.user_key = e.user_key
JOIN first_seen  fs ON fs.product = e.product AND fs.user_key = e.user_key
GROUP BY e.dt, e.product, e.user_key, tp.platform, fs.first_dt
ORDER BY 1, 2, 3
