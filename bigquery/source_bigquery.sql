-- BigQuery's submissions for titles.sql: the chosen months of a wildcard table of monthly
-- submission tables (fh-bigquery.reddit_posts.* names them YYYY_MM). The months are a query
-- parameter (@months, ARRAY<STRING> of table suffixes); the table is an identifier, which
-- BigQuery cannot take as a parameter, so the runner checks it against a strict pattern
-- before it goes between the backticks below.
(
  SELECT subreddit, title, score, author, over_18, created_utc
  FROM `{table}`
  WHERE _TABLE_SUFFIX IN UNNEST(@months)
)
