"""Joining a Ray cluster, or starting a local instance: shared by the scan's Ray executor (``pipeline``) and a
rematch on Ray (``results``), which are peers and so cannot import each other.

Ray is an optional dependency (``pip install 'cleanset[ray]'``); it is imported only here, only when asked for.
"""

from __future__ import annotations

import os
import re
import sys
from typing import Any

ADDRESS_ENV = "RAY_ADDRESS"
# Settings a worker must share with the driver to find what a job names: the bank store, the node's mirror of
# remote locations, the object store's endpoint. Credentials are never among them: a node has its own (IAM role,
# workload identity), as every Ray deployment's nodes do, and what is forwarded lands in Ray's object store and task
# arguments, which Ray may spill to disk.
FORWARDED_ENV = ("CLEANSET_HOME", "CLEANSET_CACHE", "AWS_ENDPOINT_URL", "AWS_DEFAULT_REGION", "AWS_REGION")
# fsspec's ``FSSPEC_<PROTOCOL>_<OPTION>`` settings that say where a store is and how to talk to it, never who may
# read it: an allow-list, since fsspec takes any driver option this way (``FSSPEC_S3_KEY``, ``FSSPEC_S3_SECRET``,
# ``FSSPEC_GCS_TOKEN``, ``FSSPEC_HF_TOKEN``, or a whole ``FSSPEC_S3`` JSON with keys in it).
FSSPEC_SAFE_OPTIONS = frozenset(
    {"ENDPOINT_URL", "ENDPOINT", "REGION", "REGION_NAME", "PROJECT", "ANON", "USE_SSL", "REQUESTER_PAYS"}
)
SECRET_NAME = re.compile(r"KEY|SECRET|TOKEN|PASSW|CREDENTIAL|SESSION|AUTH|CERT", re.IGNORECASE)


def import_ray() -> Any:
    try:
        import ray
    except ImportError as e:  # pragma: no cover - depends on the environment
        raise ImportError(f"--executor ray needs Ray: pip install 'cleanset[ray]' ({e})") from e
    return ray


def ensure_ray(address: str | None = None, num_cpus: int | None = None) -> bool:
    """Connect to the cluster at ``address`` (default: Ray's own ``RAY_ADDRESS``), or start a local instance with
    ``num_cpus`` CPUs and no dashboard; True when this call started or joined it, False when already connected.

    A local instance's workers get the driver's ``sys.path``, so they import what the driver imports (a plugin
    source from an uninstalled checkout, a test's fault-injecting source)."""
    ray = import_ray()
    if ray.is_initialized():
        return False
    address = address or os.environ.get(ADDRESS_ENV) or None
    if address:
        ray.init(address=address, include_dashboard=False, log_to_driver=False)
        return True
    paths = [p for p in sys.path if p and os.path.isdir(p)]
    ray.init(
        num_cpus=num_cpus,
        include_dashboard=False,
        log_to_driver=False,
        runtime_env={"env_vars": {"PYTHONPATH": os.pathsep.join(paths)}},
    )
    return True


def forwarded_env() -> dict[str, str]:
    """The driver's settings a job's workers apply before they open anything (see ``FORWARDED_ENV``)."""
    return {k: v for k, v in os.environ.items() if is_forwarded(k)}


def is_forwarded(name: str) -> bool:
    """Whether a variable travels to workers: a named setting, or a safe fsspec option; never a secret's name."""
    if SECRET_NAME.search(name):
        return False
    if name in FORWARDED_ENV:
        return True
    parts = name.split("_", 2)  # FSSPEC, protocol, option
    return len(parts) == 3 and parts[0] == "FSSPEC" and parts[2] in FSSPEC_SAFE_OPTIONS
