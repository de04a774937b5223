-- engagement_daily: events, people and sessions per
-- dt × product × platform × event_name, from the events table.
SELECT
  dt,
  coalesce(nullif(product, ''), '(none)')  AS product,
  coalesce(nullif(platform, ''), '(none)') AS platform,
  event_name,
  count(*)                    AS events,
  count(DISTINCT user_key)    AS users,
  count(DISTINCT session_key) AS sessions
FROM events
GROUP BY 1, 2, 3, 4
ORDER BY 1, 2, 3, 4
