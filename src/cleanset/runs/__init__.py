"""What the scan writes and everything else reads: the results schema, the run-folder layout and manifest, the
Parquet encoding, the summary and the run store.

A layer of its own below ``pipeline`` (which writes runs) and ``results`` (which queries and rematches them), so
the two share these definitions without importing each other.
"""
