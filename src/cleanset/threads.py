"""One BLAS thread per process, and one index thread per scan worker.

cleanset's numeric work is many tiny matrix products per image (the PDQ DCT, pHash's resampling weights): a BLAS
thread pool never speeds those up, while its spinning threads double the CPU a hash costs and fight the scan's own
worker processes for the cores (measured: the same hashing rate at half the CPU with one thread). Parallelism comes
from worker processes instead, one per core.

The same holds for index queries in a scan worker: a Hamming index splits a large batch over threads, which pays in
one process (``cleanset match``, the service) but in a worker only adds threads to cores the other workers already
keep busy.
"""

from __future__ import annotations

_query_threads: int | None = None


def limit_blas_threads() -> None:
    """Limit every loaded BLAS library (OpenBLAS, MKL, BLIS) to one thread, for this process and its forks."""
    from threadpoolctl import threadpool_limits

    threadpool_limits(limits=1, user_api="blas")


def one_query_thread() -> None:
    """In a worker process (one per core): index queries run on the calling thread only."""
    global _query_threads
    _query_threads = 1


def query_threads() -> int | None:
    """Threads an index may split one query batch over in this process; None: as many as it likes."""
    return _query_threads
