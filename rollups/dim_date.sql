-- dim_date: one row per calendar day from the first built day through the
-- last one, gaps included.
--
-- Inputs:
--   built(dt DATE, provisional BOOLEAN)
--     the built days and their mark; in Athena: SELECT dt, provisional FROM
--     data_quality_daily.
--
-- Semantics: the day's calendar parts; iso_year, iso_week and weekday
-- follow ISO 8601 (weeks start on Monday; week 1 holds the year's first
-- Thursday; weekday 1 is Monday, 7 Sunday). built is whether the day is
-- built; provisional is its mark, and true for a day never built.
--
-- DuckDB dialect (range, isoyear, isodow, monthname, dayname); in Athena:
-- UNNEST(sequence(lo, hi)), year_of_week, week, day_of_week and
-- date_format(dt, '%M') / date_format(dt, '%W').
WITH span AS (
  SELECT min(dt) AS lo, max(dt) AS hi FROM built
),
d AS (
  SELECT CAST(unnest(range(lo, hi + INTERVAL 1 DAY, INTERVAL 1 DAY)) AS DATE) AS dt
  FROM span
  WHERE lo IS NOT NULL
)
SELECT d.dt, d.dt AS date,
       CAST(year(d.dt) AS BIGINT)      AS year,
       CAST(quarter(d.dt) AS BIGINT)   AS quarter,
       CAST(month(d.dt) AS BIGINT)     AS month,
       monthname(d.dt)                 AS month_name,
       CAST(isoyear(d.dt) AS BIGINT)   AS iso_year,
       CAST(weekofyear(d.dt) AS BIGINT) AS iso_week,
       CAST(isodow(d.dt) AS BIGINT)    AS weekday,
       dayname(d.dt)                   AS weekday_name,
       isodow(d.dt) >= 6               AS weekend,
       b.dt IS NOT NULL                AS built,
       coalesce(b.provisional, true)   AS provisional
FROM d
LEFT JOIN built b ON b.dt = d.dt
ORDER BY 1
