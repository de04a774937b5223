-- active_users_daily: one row per dt × product, from user_daily.
--
-- Inputs:
--   user_daily(dt DATE, product, user_key, ...)
--     must hold every day from the first requested dt − 27 to the last
--     requested dt (more is harmless).
--   users(product, user_key, first_seen_dt DATE)
--     the users table: a person is new on first_seen_dt, the first day
--     they were ever seen in the product (over every user_daily partition).
--   built(dt DATE, provisional BOOLEAN)
--     the built days (whose user_daily is committed) and their mark; in
--     Athena: SELECT dt, provisional FROM data_quality_daily. Rows of
--     user_daily on other days are ignored.
--   days(dt DATE)
--     the days to compute, one row each; a day that is not built gets no row.
--
-- Semantics (docs/design.md §What every number means "Windows"): a person is active on a day when
-- user_daily has a row for them in the product that day.
--   dau             distinct user_key active on dt
--   wau             distinct user_key active on any day of dt − 6 .. dt
--   mau             distinct user_key active on any day of dt − 27 .. dt
--   new_users       distinct user_key active on dt whose first_seen_dt is dt
--   returning_users dau − new_users
--   stickiness      dau / mau as a double
--   mau_window_days days of dt − 27 .. dt on or after the start of data
--   provisional     some built day of dt − 27 .. dt is provisional
-- The start of data is the first built day with a user_daily row: days
-- before it hold nobody. A day after it that is not built is not computed:
-- wau is NULL if one is among dt − 6 .. dt, mau and stickiness if one is
-- among dt − 27 .. dt. A built day with no data is an empty day, not a
-- missing one: a (dt, product) row exists exactly when the product had
-- someone active on a built day of dt − 27 .. dt, so a quiet day after
-- active days gets a row with dau = 0, and a product silent for 28 days or
-- more has none.
--
-- DuckDB and Athena dialect (date_diff, INTERVAL 'n' DAY, CASE in DISTINCT,
-- FILTER).
WITH ud AS (
  SELECT u.dt, coalesce(nullif(u.product, ''), '(none)') AS product, u.user_key
  FROM user_daily u
  JOIN built b ON b.dt = u.dt
),
start AS (
  SELECT min(dt) AS dt FROM ud
),
u AS (
  SELECT d.dt, d.product, d.user_key, bool_or(d.dt = s.first_seen_dt) AS is_new
  FROM ud d
  LEFT JOIN users s ON s.product = d.product AND s.user_key = d.user_key
  GROUP BY 1, 2, 3
),
w AS (
  SELECT d.dt, u.product, u.user_key, u.is_new, date_diff('day', u.dt, d.dt) AS age
  FROM days d
  JOIN built b ON b.dt = d.dt
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
),
spans AS (
  -- per day: where its 7- and 28-day windows start, clipped to the start of data
  SELECT d.dt,
         greatest(s.dt, CAST(d.dt - INTERVAL '6' DAY AS DATE))  AS from7,
         greatest(s.dt, CAST(d.dt - INTERVAL '27' DAY AS DATE)) AS from28
  FROM days d
  CROSS JOIN start s
),
win AS (
  -- a window is known when every day of it from its clipped start is built
  SELECT p.dt, p.from28,
         count(*) FILTER (WHERE b.dt >= p.from7) = date_diff('day', p.from7, p.dt) + 1   AS wau_known,
         count(*) FILTER (WHERE b.dt >= p.from28) = date_diff('day', p.from28, p.dt) + 1 AS mau_known,
         bool_or(b.provisional)                                                           AS provisional
  FROM spans p
  JOIN built b ON b.dt BETWEEN p.dt - INTERVAL '27' DAY AND p.dt
  GROUP BY 1, 2, p.from7
)
SELECT a.dt, a.product, a.dau,
       CASE WHEN w.wau_known THEN a.wau END AS wau,
       CASE WHEN w.mau_known THEN a.mau END AS mau,
       a.new_users,
       a.dau - a.new_users AS returning_users,
       CASE WHEN w.mau_known THEN CAST(a.dau AS DOUBLE) / a.mau END AS stickiness,
       CAST(date_diff('day', w.from28, a.dt) + 1 AS BIGINT) AS mau_window_days,
       w.provisional
FROM agg a
JOIN win w ON w.dt = a.dt
ORDER BY 1, 2
