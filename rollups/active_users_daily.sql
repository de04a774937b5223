-- active_users_daily: one row per dt × product, from user_daily.
--
-- Inputs:
--   user_daily(dt DATE, product, user_key, ...)
--     must hold every day from the first requested dt − 27 to the last
--     requested dt (more is harmless).
--   users(product, user_key, first_seen_dt DATE)
--     the users table: a person is new on first_seen_dt, the first day
--     they were ever seen in the product (over every user_daily partition).
--   days(dt DATE)
--     the days to compute, one row each.
--
-- Semantics (DESIGN §3 "Windows"): a person is active on a day when
-- user_daily has a row for them in the product that day.
--   dau             distinct user_key active on dt
--   wau             distinct user_key active on any day of dt − 6 .. dt
--   mau             distinct user_key active on any day of dt − 27 .. dt
--   new_users       distinct user_key active on dt whose first_seen_dt is dt
--   returning_users dau − new_users
--   stickiness      dau / mau as a double (0 if mau = 0, which cannot happen
--                   for a row that exists)
-- Days without data are empty days, not missing ones: a (dt, product) row
-- exists exactly when the product had someone active in dt − 27 .. dt
-- (mau > 0), so a quiet day after active days gets a row with dau = 0, and a
-- product silent for 28 days or more has none.
--
-- DuckDB and Athena dialect (date_diff, INTERVAL 'n' DAY, CASE in DISTINCT).
WITH u AS (
  SELECT d.dt, d.product, d.user_key, bool_or(d.dt = s.first_seen_dt) AS is_new
  FROM (SELECT dt, coalesce(nullif(product, ''), '(none)') AS product, user_key FROM user_daily) d
  LEFT JOIN users s ON s.product = d.product AND s.user_key = d.user_key
  GROUP BY 1, 2, 3
),
w AS (
  SELECT d.dt, u.product, u.user_key, u.is_new, date_diff('day', u.dt, d.dt) AS age
  FROM days d
  JOIN u ON u.dt BETWEEN d.dt - INTERVAL '27' DAY AND d.dt
),
agg AS (
  SELECT dt, product,
         count(DISTINCT CASE WHEN age = 0 THEN user_key END)            AS dau,
         count(DISTINCT CASE WHEN age < 7 THEN user_key END)            AS wau,
         count(DISTINCT user_key)                                       AS mau,
         count(DISTINCT CASE WHEN age = 0 AND is_new THEN user_key END) AS new_users
  FROM w
  GROUP BY 1, 2
)
SELECT dt, product, dau, wau, mau, new_users,
       dau - new_users AS returning_users,
       CASE WHEN mau = 0 THEN 0.0 ELSE CAST(dau AS DOUBLE) / mau END AS stickiness
FROM agg
ORDER BY 1, 2
