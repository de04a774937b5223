-- lifecycle_daily: one row per dt × product, from user_daily.
--
-- Inputs (as for active_users_daily.sql):
--   user_daily(dt DATE, product, user_key, ...)
--     must hold every day from the first requested dt − 1 to the last
--     requested dt (more is harmless).
--   users(product, user_key, first_seen_dt DATE)
--     a person is new on first_seen_dt.
--   built(dt DATE, provisional BOOLEAN)
--     the built days and their mark; rows of user_daily on other days are
--     ignored.
--   days(dt DATE)
--     the days to compute; a day that is not built gets no row.
--
-- Semantics: a person is active on a day when user_daily has a row for them
-- in the product that day.
--   new_users          active on dt, first_seen_dt = dt
--   returning_users    active on dt and on dt − 1, not new
--   resurrecting_users active on dt, not on dt − 1, not new
--   dormant_users      active on dt − 1, not on dt (a positive count)
--   provisional        dt or dt − 1 is provisional
-- A (dt, product) row exists when the product had someone active on dt or
-- on dt − 1. The start of data is the first built day with a user_daily
-- row: the day before it holds nobody. If dt − 1 is on or after the start
-- and not built, returning_users, resurrecting_users and dormant_users are
-- NULL (not computed).
--
-- DuckDB and Athena dialect (INTERVAL 'n' DAY, FILTER, UNION).
WITH ud AS (
  SELECT u.dt, coalesce(nullif(u.product, ''), '(none)') AS product, u.user_key
  FROM user_daily u
  JOIN built b ON b.dt = u.dt
),
start AS (
  SELECT min(dt) AS dt FROM ud
),
u AS (
  SELECT d.dt, d.product, d.user_key, coalesce(bool_or(d.dt = s.first_seen_dt), false) AS is_new
  FROM ud d
  LEFT JOIN users s ON s.product = d.product AND s.user_key = d.user_key
  GROUP BY 1, 2, 3
),
today AS (
  SELECT d.dt, t.product, t.user_key, t.is_new, y.user_key IS NOT NULL AS was_active
  FROM days d
  JOIN built b ON b.dt = d.dt
  JOIN u t ON t.dt = d.dt
  LEFT JOIN u y ON y.product = t.product AND y.user_key = t.user_key AND y.dt = d.dt - INTERVAL '1' DAY
),
act AS (
  SELECT dt, product,
         count(*) FILTER (WHERE is_new)                      AS new_users,
         count(*) FILTER (WHERE NOT is_new AND was_active)     AS returning_users,
         count(*) FILTER (WHERE NOT is_new AND NOT was_active) AS resurrecting_users
  FROM today
  GROUP BY 1, 2
),
gone AS (
  SELECT d.dt, y.product, count(*) AS dormant_users
  FROM days d
  JOIN built b ON b.dt = d.dt
  JOIN u y ON y.dt = d.dt - INTERVAL '1' DAY
  LEFT JOIN u t ON t.product = y.product AND t.user_key = y.user_key AND t.dt = d.dt
  WHERE t.user_key IS NULL
  GROUP BY 1, 2
),
keys AS (
  SELECT dt, product FROM act
  UNION
  SELECT dt, product FROM gone
),
prev AS (
  -- whether the day before is known (built, or before the start of data)
  SELECT d.dt,
         pb.dt IS NOT NULL OR d.dt - INTERVAL '1' DAY < s.dt AS known,
         b.provisional OR coalesce(pb.provisional, false)    AS provisional
  FROM days d
  JOIN built b ON b.dt = d.dt
  CROSS JOIN start s
  LEFT JOIN built pb ON pb.dt = d.dt - INTERVAL '1' DAY
)
SELECT k.dt, k.product,
       coalesce(a.new_users, 0) AS new_users,
       CASE WHEN p.known THEN coalesce(a.returning_users, 0) END    AS returning_users,
       CASE WHEN p.known THEN coalesce(a.resurrecting_users, 0) END AS resurrecting_users,
       CASE WHEN p.known THEN coalesce(g.dormant_users, 0) END      AS dormant_users,
       p.provisional
FROM keys k
JOIN prev p ON p.dt = k.dt
LEFT JOIN act a ON a.dt = k.dt AND a.product = k.product
LEFT JOIN gone g ON g.dt = k.dt AND g.product = k.product
ORDER BY 1, 2
