-- funnel_daily: one row per entry day × product × funnel × step, from the
-- events table. DuckDB dialect (recursive CTE, quantile_cont, map access).
--
-- Inputs:
--   events(dt DATE, event_time TIMESTAMPTZ, event_name, user_key, product,
--          properties MAP(VARCHAR, VARCHAR))
--     every event of the built days.
--   funnel_steps(funnel, step INTEGER from 1, event_name, property, equals,
--                window_ms BIGINT, step_name)
--     the definitions (rollups.FunnelStepsSQL); property is NULL for a step
--     that needs none.
--   days(dt DATE)  the entry days to compute.
--   built(dt DATE, provisional BOOLEAN)  the built days and their mark.
-- The session time zone is the store's: a DATE cast to TIMESTAMPTZ is the
-- start of that day there.
--
-- Semantics (rollups.FunnelDaily): a person is (product, user_key). They
-- enter a funnel on dt with their first event of dt matching step 1. Each
-- next step is their first event matching it strictly later (event_time)
-- than the step before and at most window_ms after step 1. median_seconds
-- is over the people who reached the step, from step 1. A row is
-- provisional while dt, or a day the window reaches (one starting before
-- the end of dt plus the window), is provisional or not built.
WITH RECURSIVE m AS (
  SELECT s.funnel, s.step, coalesce(nullif(e.product, ''), '(none)') AS product, e.user_key, e.dt,
         epoch_ms(e.event_time) AS t
  FROM events e
  JOIN funnel_steps s ON s.event_name = e.event_name
   AND (s.property IS NULL OR map_extract_value(e.properties, s.property) = s.equals)
),
entry AS (
  SELECT m.dt, m.product, m.user_key, m.funnel, min(m.t) AS t1
  FROM m
  JOIN days d ON d.dt = m.dt
  JOIN built b ON b.dt = m.dt
  WHERE m.step = 1
  GROUP BY ALL
),
win AS (
  SELECT funnel, any_value(window_ms) AS window_ms, max(step) AS steps FROM funnel_steps GROUP BY funnel
),
walk(dt, product, user_key, funnel, step, t1, t) AS (
  SELECT dt, product, user_key, funnel, 1, t1, t1 FROM entry
  UNION ALL
  SELECT w.dt, w.product, w.user_key, w.funnel, w.step + 1, w.t1,
         (SELECT min(m.t) FROM m JOIN win ON win.funnel = m.funnel
           WHERE m.funnel = w.funnel AND m.step = w.step + 1 AND m.product = w.product
             AND m.user_key = w.user_key AND m.t > w.t AND m.t <= w.t1 + win.window_ms)
  FROM walk w
  JOIN win ON win.funnel = w.funnel
  WHERE w.t IS NOT NULL AND w.step < win.steps
),
reached AS (
  SELECT dt, product, funnel, step, count(*) AS people,
         quantile_cont((t - t1) / 1000.0, 0.5) AS median_seconds
  FROM walk
  WHERE t IS NOT NULL
  GROUP BY ALL
),
entered AS (
  SELECT dt, product, funnel, count(*) AS n FROM entry GROUP BY ALL
),
open AS (
  SELECT d.dt, w.funnel, bool_or(b.dt IS NULL OR b.provisional) AS provisional
  FROM days d
  CROSS JOIN win w
  JOIN (SELECT unnest(range(0, 10))::INTEGER AS k) ks
    ON (d.dt + ks.k)::TIMESTAMPTZ < (d.dt + 1)::TIMESTAMPTZ + to_milliseconds(w.window_ms)
  LEFT JOIN built b ON b.dt = d.dt + ks.k
  GROUP BY ALL
)
SELECT e.dt, e.product, e.funnel, s.step::BIGINT AS step, s.step_name,
       coalesce(r.people, 0) AS people,
       coalesce(r.people, 0) / e.n::DOUBLE AS conversion,
       r.median_seconds,
       s.window_ms // 1000 AS window_seconds,
       o.provisional
FROM entered e
JOIN funnel_steps s ON s.funnel = e.funnel
JOIN open o ON o.dt = e.dt AND o.funnel = e.funnel
LEFT JOIN reached r ON r.dt = e.dt AND r.product = e.product AND r.funnel = e.funnel AND r.step = s.step
ORDER BY 1, 2, 3, 4
