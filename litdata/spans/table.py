"""The template table: every counted sentence shape with the decision taken on it and why."""

from __future__ import annotations

import hashlib
import io
from dataclasses import dataclass
from pathlib import Path

import polars as pl

from litdata.config import MiningSettings

TEMPLATE = "template"
NOT_TEMPLATE = "not_template"
SCHEMA = {
    "shape": pl.String,
    "example": pl.String,
    "count": pl.Int64,
    "record_frac": pl.Float64,
    "decision": pl.String,
    "why": pl.String,
}
COUNTS_SCHEMA = {"shape": pl.String, "example": pl.String, "count": pl.Int64}


@dataclass(frozen=True, slots=True)
class TemplateTable:
    """Columns: shape, example, count (distinct records containing the shape), record_frac, decision, why.

    Rows are sorted by count (descending) then shape, so the same input gives the same bytes. Shapes seen in a
    single record are left out unless something made them templates: they are most of the distinct shapes
    of a real corpus (every unique question) and carry no information about templates.
    """

    frame: pl.DataFrame
    n_records: int
    settings: MiningSettings

    @classmethod
    def build(cls, counts: pl.DataFrame, *, n_records: int, settings: MiningSettings) -> TemplateTable:
        """Decide every shape of `counts` (shape, example, count) under `settings`; add user-listed shapes."""
        s = settings
        user = pl.DataFrame({"shape": sorted(s.user_templates | s.user_not_templates)}, schema={"shape": pl.String})
        counts = counts.select(COUNTS_SCHEMA.keys()).cast(COUNTS_SCHEMA)
        df = (
            counts.join(user, on="shape", how="full", coalesce=True)
            .with_columns(pl.col("count").fill_null(0), pl.col("example").fill_null(""))
            .sort(["count", "shape"], descending=[True, False])
            .with_columns(
                record_frac=(pl.col("count") / n_records) if n_records else pl.lit(0.0),
                rank=pl.int_range(1, pl.len() + 1),
            )
        )
        frac, count = pl.col("record_frac"), pl.col("count")
        by_threshold = (frac >= s.min_frac) & (count >= s.min_count)
        by_rank = (pl.col("rank") <= s.top_k) & (count >= s.min_count) if s.top_k else pl.lit(False)
        fmt_frac = frac.round(4).cast(pl.String)
        why = (
            pl.when(pl.col("shape").is_in(sorted(s.user_not_templates)))
            .then(pl.lit("user not-templates list"))
            .when(pl.col("shape").is_in(sorted(s.user_templates)))
            .then(pl.lit("user list"))
            .when(by_threshold)
            .then(pl.format(f"frac {{}} >= {s.min_frac:g} and count {{}} >= {s.min_count}", fmt_frac, count))
            .when(by_rank)
            .then(pl.format(f"rank {{}} <= top-k {s.top_k} and count {{}} >= {s.min_count}", "rank", count))
            .otherwise(pl.format("below threshold (frac {}, count {})", fmt_frac, count))
        )
        is_template = ~pl.col("shape").is_in(sorted(s.user_not_templates)) & (
            pl.col("shape").is_in(sorted(s.user_templates)) | by_threshold | by_rank
        )
        df = df.with_columns(
            decision=pl.when(is_template).then(pl.lit(TEMPLATE)).otherwise(pl.lit(NOT_TEMPLATE)), why=why
        )
        keep = (pl.col("decision") == TEMPLATE) | (count >= 2) | pl.col("shape").is_in(user["shape"].to_list())
        return cls(frame=df.filter(keep).select(SCHEMA.keys()).cast(SCHEMA), n_records=n_records, settings=s)

    def template_shapes(self) -> frozenset[str]:
        return frozenset(self.frame.filter(pl.col("decision") == TEMPLATE)["shape"].to_list())

    def top(self, n: int = 10) -> pl.DataFrame:
        """The `n` most frequent rows (templates or not), for the compile summary."""
        return self.frame.head(n)

    def to_parquet_bytes(self) -> bytes:
        buf = io.BytesIO()
        # No statistics and one row group: nothing in the file depends on anything but the rows themselves.
        self.frame.write_parquet(buf, compression="zstd", statistics=False, row_group_size=max(len(self.frame), 1))
        return buf.getvalue()

    def write_parquet(self, path: str | Path) -> None:
        Path(path).write_bytes(self.to_parquet_bytes())

    def sha256(self) -> str:
        return hashlib.sha256(self.to_parquet_bytes()).hexdigest()

    def settings_dict(self) -> dict:
        """The mining settings and outcome, for manifest.json."""
        return {
            **self.settings.to_dict(),
            "records": self.n_records,
            "shapes": len(self.frame),
            "templates": int((self.frame["decision"] == TEMPLATE).sum()),
        }
