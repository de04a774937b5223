-- users: one row per product × user_key, from every current user_daily
-- partition. first_platform / first_country are user_daily's platform and
-- country on the first day.
WITH u AS (
  SELECT dt,
         coalesce(nullif(product, ''), '(none)') AS product,
         user_key, platform, country
  FROM user_daily
),
agg AS (
  SELECT product, user_key,
         min(dt) AS first_seen_dt,
         max(dt) AS last_seen_dt,
         count(DISTINCT dt) AS days_active
  FROM u
  GROUP BY 1, 2
)
SELECT a.product, a.user_key, a.first_seen_dt, a.last_seen_dt,
       CAST(a.days_active AS BIGINT) AS days_active,
       f.platform AS first_platform, f.country AS first_country
FROM agg a
JOIN u f ON f.product = a.product AND f.user_key = a.user_key AND f.dt = a.first_seen_dt
ORDER BY 1, 2
