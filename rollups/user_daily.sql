-- user_daily: one row per dt × product × user_key, from the events table.
-- platform and country are the ones with the most events that day (ties:
-- alphabetically first). A pure function of the day's events: no first-seen
-- state (new users come from the users table).
WITH e AS (
  SELECT dt,
         coalesce(nullif(product, ''), '(none)')  AS product,
         coalesce(nullif(platform, ''), '(none)') AS platform,
         coalesce(nullif(country, ''), '(none)')  AS country,
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
per_country AS (
  SELECT dt, product, user_key, country, count(*) AS n
  FROM e GROUP BY 1, 2, 3, 4
),
top_country AS (
  SELECT dt, product, user_key, country
  FROM (
    SELECT *, row_number() OVER (PARTITION BY dt, product, user_key ORDER BY n DESC, country) AS rk
    FROM per_country
  ) t
  WHERE rk = 1
)
SELECT
  e.dt, e.product, e.user_key,
  tp.platform,
  tc.country,
  count(*)                      AS events,
  count(DISTINCT e.session_key) AS sessions,
  min(e.event_time)             AS first_event_at,
  max(e.event_time)             AS last_event_at
FROM e
JOIN top_platform tp ON tp.dt = e.dt AND tp.product = e.product AND tp.user_key = e.user_key
JOIN top_country tc ON tc.dt = e.dt AND tc.product = e.product AND tc.user_key = e.user_key
GROUP BY e.dt, e.product, e.user_key, tp.platform, tc.country
ORDER BY 1, 2, 3
