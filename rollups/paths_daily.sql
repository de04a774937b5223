-- paths_daily: transitions from one event to the next per
-- dt × product × from_event × to_event, from the events table.
-- Within a day, a person's path in a session is their events of that
-- session: grouped by (session_key, user_key), ordered by (event_time,
-- event_id). Each pair of consecutive events is one transition from_event →
-- to_event (the same name twice too). session_key is already split at
-- midnight and after 30 minutes of inactivity, so no transition crosses a
-- session boundary. A transition counts under the product of its from event
-- ('(none)' if empty); people are the distinct user_key with at least one.
-- Per dt and product the top 200 pairs by transitions (ties: from_event,
-- then to_event, in byte order) are kept, is_other false; the others, if
-- any, are one row with is_other true and from_event = to_event =
-- '(other)': their transitions summed and the distinct people among them
-- (is_other tells it from a pair of events really named '(other)').
WITH steps AS (
  SELECT dt, user_key, event_name AS from_event,
         coalesce(nullif(product, ''), '(none)') AS product,
         lead(event_name) OVER (PARTITION BY dt, session_key, user_key ORDER BY event_time, event_id) AS to_event
  FROM events
),
transitions AS (
  SELECT * FROM steps WHERE to_event IS NOT NULL
),
pairs AS (
  SELECT dt, product, from_event, to_event,
         count(*) AS transitions,
         count(DISTINCT user_key) AS people
  FROM transitions
  GROUP BY 1, 2, 3, 4
),
ranked AS (
  SELECT *, row_number() OVER (PARTITION BY dt, product ORDER BY transitions DESC, from_event, to_event) AS rn
  FROM pairs
),
rest AS (
  SELECT t.dt, t.product,
         count(*) AS transitions,
         count(DISTINCT t.user_key) AS people
  FROM transitions t
  JOIN ranked r ON r.dt = t.dt AND r.product = t.product AND r.from_event = t.from_event AND r.to_event = t.to_event
  WHERE r.rn > 200
  GROUP BY 1, 2
)
SELECT dt, product, from_event, to_event, is_other, transitions, people
FROM (
  SELECT dt, product, from_event, to_event, false AS is_other, transitions, people, rn FROM ranked WHERE rn <= 200
  UNION ALL
  SELECT dt, product, '(other)', '(other)', true, transitions, people, 201 FROM rest
) AS kept
ORDER BY dt, product, rn
