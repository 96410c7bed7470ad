-- Reddit titles for fine-tuning: the semantics of the export stage, shared by both engines.
--
-- Reads the submissions (columns subreddit, title, score, author, over_18, created_utc)
-- from the one placeholder in braces below, which each engine fills: BigQuery with
-- source_bigquery.sql, DuckDB with the table it loads out of local dump files. Every user value is a named query parameter,
-- written @name here (BigQuery's marker; the DuckDB runner swaps in DuckDB's marker):
--   @min_score       INT64          score a post needs to count towards its subreddit's authors
--   @exclude         ARRAY<STRING>  lower-cased subreddit names to leave out
--   @top_subreddits  INT64          N: subreddits kept, ranked by distinct authors
--   @top_posts       INT64          K: posts kept per subreddit, ranked by score
-- Output: subreddit, title; ordered by subreddit, then by the post's rank in it.
-- Only syntax both dialects accept is used here (no LIMIT with a parameter, no
-- engine-specific list functions), so the two engines run this very text.
WITH safe AS (
  -- SFW posts of subreddits outside the exclusion list. A subreddit marked NSFW has every
  -- post over_18, so it has no row here and can never be ranked. Rows missing a field the
  -- ranking needs are left out here (the DuckDB runner counts them).
  SELECT subreddit, title, score, author, created_utc
  FROM {submissions}
  WHERE over_18 = FALSE
    AND subreddit IS NOT NULL
    AND title IS NOT NULL
    AND score IS NOT NULL
    AND LOWER(subreddit) NOT IN (SELECT * FROM UNNEST(@exclude))
),
subreddit_authors AS (
  SELECT subreddit, COUNT(DISTINCT author) AS authors
  FROM safe
  WHERE score >= @min_score
  GROUP BY subreddit
),
top_subreddits AS (
  -- Equal author counts are broken by name, so N always picks the same subreddits.
  SELECT subreddit
  FROM (
    SELECT subreddit, ROW_NUMBER() OVER (ORDER BY authors DESC, subreddit) AS subreddit_rank
    FROM subreddit_authors
  ) AS ranked
  WHERE subreddit_rank <= @top_subreddits
),
ranked_posts AS (
  -- Equal scores are broken by the earlier post, then by title, so K is deterministic.
  SELECT p.subreddit, p.title,
         ROW_NUMBER() OVER (
           PARTITION BY p.subreddit
           ORDER BY p.score DESC, p.created_utc ASC NULLS LAST, p.title
         ) AS post_rank
  FROM safe AS p
  JOIN top_subreddits AS t ON p.subreddit = t.subreddit
)
SELECT
  subreddit,
  -- One level of HTML un-escaping: &amp; last, so a title that really says "&lt;" (stored
  -- as "&amp;lt;") keeps it. Then the U+FFFD replacement character (the literal between
  -- the quotes) is dropped.
  REPLACE(REPLACE(REPLACE(REPLACE(title, '&lt;', '<'), '&gt;', '>'), '&amp;', '&'), '�', '') AS title
FROM ranked_posts
WHERE post_rank <= @top_posts
ORDER BY subreddit, post_rank
