-- retention_daily: one row per cohort day × product × day_n (1, 7, 14, 28),
-- from user_daily. The output column dt is the cohort day, which is also the
-- table's partition (curated/retention_daily/dt=<cohort day>/).
--
-- Inputs:
--   user_daily(dt DATE, product, user_key, ...)
--     must hold the cohort days and the days cohort + 1, 7, 14 and 28 up to
--     the as-of day (more is harmless).
--   users(product, user_key, first_seen_dt DATE)
--     the users table: a person is new on first_seen_dt, the first day
--     they were ever seen in the product (over every user_daily partition).
--   built(dt DATE, provisional BOOLEAN)
--     the built days (whose user_daily is committed) and their mark; in
--     Athena: SELECT dt, provisional FROM data_quality_daily. Other days are
--     not known, even if user_daily has rows for them.
--   days(dt DATE)
--     the cohort days to compute, one row each.
--
-- Semantics:
--   cohort_users   distinct user_key active on the cohort day dt whose first_seen_dt is dt
--   retained_users of those, the ones with a row on exactly dt + day_n
--                  (activity on other days does not count)
--   retention      retained_users / cohort_users as a double
--   provisional    dt or dt + day_n is provisional
-- Rows exist for a (dt, product) only when dt is built and cohort_users > 0,
-- and for a day_n only when dt + day_n is built: a recent cohort has fewer
-- rows, and a missing row means "not known yet", never "nobody came back".
--
-- DuckDB and Athena dialect (date_diff, VALUES).
WITH u AS (
  SELECT d.dt, d.product, d.user_key, bool_or(d.dt = s.first_seen_dt) AS is_new
  FROM (SELECT u.dt, coalesce(nullif(u.product, ''), '(none)') AS product, u.user_key
        FROM user_daily u JOIN built b ON b.dt = u.dt) d
  LEFT JOIN users s ON s.product = d.product AND s.user_key = d.user_key
  GROUP BY 1, 2, 3
),
cohort AS (
  SELECT u.dt AS cohort_dt, u.product, u.user_key
  FROM days d
  JOIN u ON u.dt = d.dt
  WHERE u.is_new
),
sizes AS (
  SELECT cohort_dt, product, count(*) AS cohort_users
  FROM cohort
  GROUP BY 1, 2
),
n AS (
  SELECT day_n FROM (VALUES (1), (7), (14), (28)) AS t(day_n)
),
grid AS (
  SELECT s.cohort_dt, s.product, n.day_n, s.cohort_users, bc.provisional OR br.provisional AS provisional
  FROM sizes s
  CROSS JOIN n
  JOIN built bc ON bc.dt = s.cohort_dt
  JOIN built br ON date_diff('day', s.cohort_dt, br.dt) = n.day_n
),
retained AS (
  SELECT c.cohort_dt, c.product, n.day_n, count(*) AS retained_users
  FROM cohort c
  CROSS JOIN n
  JOIN u ON u.product = c.product AND u.user_key = c.user_key
        AND date_diff('day', c.cohort_dt, u.dt) = n.day_n
  GROUP BY 1, 2, 3
)
SELECT g.cohort_dt AS dt, g.product, CAST(g.day_n AS BIGINT) AS day_n, g.cohort_users,
       coalesce(r.retained_users, 0) AS retained_users,
       CAST(coalesce(r.retained_users, 0) AS DOUBLE) / g.cohort_users AS retention,
       g.provisional
FROM grid g
LEFT JOIN retained r
  ON r.cohort_dt = g.cohort_dt AND r.product = g.product AND r.day_n = g.day_n
ORDER BY 1, 2, 3
