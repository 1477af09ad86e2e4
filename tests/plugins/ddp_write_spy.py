"""Loaded through BENCH_PLUGINS by the torchrun test: appends "<rank> <prompt>" to $WRITE_SPY_LOG
for every record written, so the test can tell that rank 0 alone writes, once per record."""

import os

import bench.results

_write_record = bench.results.write_record


def _logged_write_record(results_dir, rec):
    with open(os.environ["WRITE_SPY_LOG"], "a") as f:
        f.write(f"{os.environ.get('RANK', '-')} {rec.get('prompt')}\n")
    return _write_record(results_dir, rec)


bench.results.write_record = _logged_write_record
