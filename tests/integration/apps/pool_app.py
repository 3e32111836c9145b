"""A multiprocessing.Pool job: every worker's spans must reach the collector.

python pool_app.py JOBS [terminate|close]
"""

import multiprocessing as mp
import os
import sys

from opentelemetry import trace

import ttbt5_otel

ttbt5_otel.init(service_name="pool-job", instrument=("none",), runtime_metrics=False)


def work(index: int) -> int:
    with trace.get_tracer("pool").start_as_current_span("job", attributes={"job.index": index}):
        return os.getpid()


if __name__ == "__main__":
    jobs, ending = int(sys.argv[1]), sys.argv[2]
    pool = mp.Pool(4)
    pids = pool.map(work, range(jobs))
    if ending == "terminate":
        pool.terminate()  # what leaving a `with Pool(...)` block does
    else:
        pool.close()
    pool.join()
    print(len(set(pids)))
