"""Writing a run: scan plan, shard tasks (image and URL column paths, both deciding through ``cleanset.assess``),
the completion ledger and executors."""
