"""The distributed export engine: bigquery/titles.sql on Google BigQuery (optional extra).

    pip install -e '.[bigquery]'   (google-cloud-bigquery)

Credentials come only from Google's standard mechanisms (Application Default
Credentials: `gcloud auth application-default login`, GOOGLE_APPLICATION_CREDENTIALS,
or the metadata server on Google Cloud), never from the run config. A dry run reports
the bytes the query will scan before anything is billed; `max_bytes_billed` stops the
run there when the estimate is too high and caps the real job as well.
"""
from __future__ import annotations

import time
from typing import TYPE_CHECKING

from pipeline.export.sql import Param, bigquery_query, query_parameters

if TYPE_CHECKING:
    from pipeline.export.config import ExportConfig

CREDENTIALS_HELP = (
    "no Google Cloud credentials found. Use Application Default Credentials: run "
    "`gcloud auth application-default login`, or set GOOGLE_APPLICATION_CREDENTIALS to a "
    "service-account key file, or run on Google Cloud. Credentials never go in the config file."
)


class BigQueryError(RuntimeError):
    """BigQuery could not be used or refused the job; the message says why and what to do."""


def bigquery_parameters(ecfg: ExportConfig) -> list[Param]:
    """The shared query parameters plus @months, the wildcard-table suffixes (YYYY_MM)."""
    months = [m.replace("-", "_") for m in ecfg.bigquery.months]
    return query_parameters(ecfg) + [Param("months", "STRING", months, is_array=True)]


def job_config(ecfg: ExportConfig, dry_run: bool):
    """A `QueryJobConfig` carrying every user value as a typed parameter; `dry_run` only estimates."""
    from google.cloud import bigquery

    params = [bigquery.ArrayQueryParameter(p.name, p.bq_type, p.value) if p.is_array
              else bigquery.ScalarQueryParameter(p.name, p.bq_type, p.value)
              for p in bigquery_parameters(ecfg)]
    return bigquery.QueryJobConfig(
        query_parameters=params,
        dry_run=dry_run,
        # A cached result would report 0 bytes and hide what the query really costs.
        use_query_cache=not dry_run,
        use_legacy_sql=False,
        maximum_bytes_billed=ecfg.bigquery.max_bytes_billed,
    )


def make_client(ecfg: ExportConfig):
    """A BigQuery client from Application Default Credentials; BigQueryError when there are none."""
    try:
        import google.auth
        from google.auth.exceptions import DefaultCredentialsError
        from google.cloud import bigquery
    except ImportError:
        raise BigQueryError("the bigquery engine needs the optional extra: "
                            "pip install 'google-cloud-bigquery==3.47.0'") from None
    try:
        credentials, project = google.auth.default(scopes=["https://www.googleapis.com/auth/cloud-platform"])
    except DefaultCredentialsError:
        raise BigQueryError(CREDENTIALS_HELP) from None
    project = ecfg.bigquery.project or project
    if not project:
        raise BigQueryError("no Google Cloud project to bill: set export.bigquery.project "
                            "or GOOGLE_CLOUD_PROJECT")
    return bigquery.Client(project=project, credentials=credentials, location=ecfg.bigquery.location)


def _gib(n: int | None) -> str:
    return "unknown" if n is None else f"{n / 2**30:.2f} GiB"


def run_bigquery(ecfg: ExportConfig) -> tuple[list[tuple[str, str]] | None, dict]:
    """Dry-run, then run the export on BigQuery; returns the (subreddit, title) rows and stats.

    The rows are None when `bigquery.dry_run_only` is set (only the estimate is made).
    """
    from google.api_core.exceptions import GoogleAPIError
    from google.auth.exceptions import GoogleAuthError

    started = time.perf_counter()
    client = make_client(ecfg)
    sql = bigquery_query(ecfg.bigquery.table)
    limit = ecfg.bigquery.max_bytes_billed
    try:
        dry = client.query(sql, job_config=job_config(ecfg, dry_run=True))
        estimate = dry.total_bytes_processed
        print(f"export: BigQuery dry run: the query will scan {_gib(estimate)} ({estimate} bytes)")
        stats = {"engine": "bigquery", "table": ecfg.bigquery.table, "months": list(ecfg.bigquery.months),
                 "bytes_estimated": estimate}
        if limit is not None and estimate is not None and estimate > limit:
            raise BigQueryError(f"the query would scan {_gib(estimate)}, more than "
                                f"export.bigquery.max_bytes_billed ({_gib(limit)}); nothing was run")
        if ecfg.bigquery.dry_run_only:
            return None, stats
        job = client.query(sql, job_config=job_config(ecfg, dry_run=False))
        rows = [(row["subreddit"], row["title"]) for row in job.result(page_size=10_000)]
    except (GoogleAPIError, GoogleAuthError) as exc:
        raise BigQueryError(f"BigQuery refused the job: {exc}") from None
    stats.update(bytes_processed=job.total_bytes_processed, bytes_billed=job.total_bytes_billed,
                 job_id=job.job_id, seconds=round(time.perf_counter() - started, 3))
    return rows, stats
