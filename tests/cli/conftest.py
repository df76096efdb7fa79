"""The fixtures of cli_fixtures, for every test here (helpers are imported from cli_fixtures by name)."""

from cli_fixtures import dataset, run

__all__ = ["dataset", "run"]
