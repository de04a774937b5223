-- stickiness_daily: one row per dt × product × window_days (7, 28) ×
-- days_active (1 .. window_days), from user_daily.
--
-- Inputs (as for active_users_daily.sql):
--   user_daily(dt DATE, product, user_key, ...)
--     must hold every day from the first requested dt − 27 to the last
--     requested dt (more is harmless).
--   built(dt DATE, provisional BOOLEAN)
--     the built days and their mark; rows of user_daily on other days are
--     ignored.
--   days(dt DATE)
--     the days to compute; a day that is not built gets no row.
--
-- Semantics: a person is active on a day when user_daily has a row for them
-- in the product that day.
--   people       of the people active at least once on dt − window_days + 1
--                .. dt, those active on exactly days_active of those days
--   provisional  some built day of the window is provisional
-- The rows of a (dt, product, window_days), one per days_active from 1 to
-- window_days (people may be 0), exist when someone was active in the
-- window and every day of the window on or after the start of data (the
-- first built day with a user_daily row) is built; summed over
-- days_active, people is active_users_daily's wau (7) or mau (28).
--
-- DuckDB and Athena dialect (date_diff, INTERVAL 'n' DAY, VALUES, FILTER).
WITH ud AS (
  SELECT DISTINCT u.dt, coalesce(nullif(u.product, ''), '(none)') AS product, u.user_key
  FROM user_daily u
  JOIN built b ON b.dt = u.dt
),
start AS (
  SELECT min(dt) AS dt FROM ud
),
w AS (
  SELECT window_days FROM (VALUES (7), (28)) AS t(window_days)
),
per AS (
  -- per day, window and person: the days of the window they were active on
  SELECT d.dt, w.window_days, u.product, u.user_key, count(*) AS days_active
  FROM days d
  JOIN built b ON b.dt = d.dt
  CROSS JOIN w
  JOIN ud u ON u.dt BETWEEN d.dt - INTERVAL '27' DAY AND d.dt AND date_diff('day', u.dt, d.dt) < w.window_days
  GROUP BY 1, 2, 3, 4
),
hist AS (
  SELECT dt, window_days, product, days_active, count(*) AS people
  FROM per
  GROUP BY 1, 2, 3, 4
),
win AS (
  -- a window is known when every day of it from its start, clipped to the
  -- start of data, is built
  SELECT d.dt, w.window_days,
         count(*) FILTER (WHERE b.dt >= s.dt) >= least(w.window_days, date_diff('day', s.dt, d.dt) + 1) AS known,
         bool_or(b.provisional) AS provisional
  FROM days d
  CROSS JOIN w
  CROSS JOIN start s
  JOIN built b ON b.dt BETWEEN d.dt - INTERVAL '27' DAY AND d.dt AND date_diff('day', b.dt, d.dt) < w.window_days
  GROUP BY 1, 2, s.dt
),
k AS (
  SELECT days_active FROM (VALUES (1), (2), (3), (4), (5), (6), (7), (8), (9), (10), (11), (12), (13), (14),
    (15), (16), (17), (18), (19), (20), (21), (22), (23), (24), (25), (26), (27), (28)) AS t(days_active)
),
grid AS (
  SELECT DISTINCT p.dt, p.window_days, p.product
  FROM per p
  JOIN win x ON x.dt = p.dt AND x.window_days = p.window_days
  WHERE x.known
)
SELECT g.dt, g.product, CAST(g.window_days AS BIGINT) AS window_days, CAST(k.days_active AS BIGINT) AS days_active,
       coalesce(h.people, 0) AS people, x.provisional
FROM grid g
JOIN k ON k.days_active <= g.window_days
JOIN win x ON x.dt = g.dt AND x.window_days = g.window_days
LEFT JOIN hist h ON h.dt = g.dt AND h.window_days = g.window_days AND h.product = g.product AND h.days_active = k.days_active
ORDER BY 1, 2, 3, 4
