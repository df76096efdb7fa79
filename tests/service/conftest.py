"""The fixtures of service_fixtures, for every test here (helpers are imported from service_fixtures by name)."""

from service_fixtures import served

__all__ = ["served"]
