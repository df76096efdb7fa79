"""Working on a finished run: DuckDB query views and rematch (new list versions against stored probes).

The schema, layout, summary and store a run is read through live in ``cleanset.runs``, shared with the pipeline
that writes runs, so neither package imports the other.
"""
