"""``loa bench``: Loa at province scale, measured against the naive way and the limit.

A temporary deployment shaped like Lào Cai's (``workload``) is built and pushed to a
loopback OpenSSH sshd three times — cold, warm, the next day of a campaign — each run in
a child process (``stage``) so that its peak memory is its own. The naive way
(``naive``: every commune's whole program synthesised, joined with pydub, encoded and
uploaded) and the limit (``limit``: the unique audio encoded once by ffmpeg, the bytes
that must cross the network) are measured on the same workload in the same run.
``runner`` puts it in order; ``report`` prints the table, the JSON and the docs section.
"""

from pipeline.bench.runner import BenchOptions, run_bench
from pipeline.bench.workload import FULL, QUICK, Size

__all__ = ["FULL", "QUICK", "BenchOptions", "Size", "run_bench"]
