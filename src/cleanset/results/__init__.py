"""The results store: one Parquet file per committed shard under RUN/items/, summaries, DuckDB views."""
