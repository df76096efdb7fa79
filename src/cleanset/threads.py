"""One BLAS thread per process.

cleanset's numeric work is many tiny matrix products per image (the PDQ DCT, pHash's resampling weights): a BLAS
thread pool never speeds those up, while its spinning threads double the CPU a hash costs and fight the scan's own
worker processes for the cores (measured: the same hashing rate at half the CPU with one thread). Parallelism comes
from worker processes instead, one per core.
"""

from __future__ import annotations


def limit_blas_threads() -> None:
    """Limit every loaded BLAS library (OpenBLAS, MKL, BLIS) to one thread, for this process and its forks."""
    from threadpoolctl import threadpool_limits

    threadpool_limits(limits=1, user_api="blas")
