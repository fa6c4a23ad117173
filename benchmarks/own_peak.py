"""A process's own peak RSS, not the one it inherited from the process that started it.

The kernel's peak RSS of a process (``ru_maxrss`` from ``getrusage`` or ``wait4``) starts from
its parent's at the fork and survives ``exec``: a child of a benchmark process that has grown
to 226 MB reports at least 226 MB, whatever it used itself. ``VmHWM`` in ``/proc/self/status``
is the high-water mark of the process's own address space, which ``exec`` replaces.

- ``own_peak_mb()``: this process's peak in MB (``VmHWM``; ``ru_maxrss`` where there is no
  ``/proc``);
- ``wrap(cmd)``: ``[python, -m, NAME, ...]`` or ``[python, -c, CODE, ...]`` run through this
  module, which runs it as ``__main__`` and at exit writes ``own-peak-rss-kb N`` as the last
  line of stderr: the larger of its own ``VmHWM`` and the peak of the processes it waited for
  (the workers it spawned start from its own size, not the benchmark's);
- ``peak_mb(stderr)``: that figure, in MB, or None if the line is not there;
- ``children_cpu(stderr)``: the user + sys seconds of the processes it waited for (a DBK
  dump's worker processes), from a ``children-cpu-s S`` line written beside it, or None.

    python -m benchmarks.own_peak -m harvester dump nobb --config C ...
"""

from __future__ import annotations

import atexit
import resource
import runpy
import sys

__all__ = ["children_cpu", "own_peak_mb", "peak_mb", "wrap"]

_MARK = "own-peak-rss-kb"
_CPU_MARK = "children-cpu-s"


def _own_kb() -> int:
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # inherited: an upper bound


def own_peak_mb() -> float:
    """This process's own peak RSS in MB."""
    return _own_kb() / 1024


def wrap(cmd: list[str]) -> list[str]:
    """``cmd`` (``python -m NAME ...`` or ``python -c CODE ...``) reporting its own peak."""
    if len(cmd) < 3 or cmd[1] not in ("-m", "-c"):
        raise ValueError(f"expected python -m NAME or -c CODE, not {cmd[:3]}")
    return [cmd[0], "-m", "benchmarks.own_peak", *cmd[1:]]


def peak_mb(stderr: str) -> float | None:
    """The peak a wrapped command wrote to ``stderr``, in MB."""
    for line in reversed(stderr.splitlines()):
        if line.startswith(_MARK + " "):
            return int(line.split()[1]) / 1024
    return None


def children_cpu(stderr: str) -> float | None:
    """The CPU seconds of the processes a wrapped command waited for, or None."""
    for line in reversed(stderr.splitlines()):
        if line.startswith(_CPU_MARK + " "):
            return float(line.split()[1])
    return None


def _report() -> None:
    kids = resource.getrusage(resource.RUSAGE_CHILDREN)
    sys.stdout.flush()
    sys.stderr.write(f"\n{_MARK} {max(_own_kb(), kids.ru_maxrss)}\n")
    sys.stderr.write(f"{_CPU_MARK} {kids.ru_utime + kids.ru_stime:.3f}\n")
    sys.stderr.flush()


def main(argv: list[str]) -> None:
    """Run ``-m NAME ARGS`` or ``-c CODE ARGS`` as ``__main__``; report the peak at exit."""
    flag, target, *args = argv
    atexit.register(_report)
    if flag == "-m":
        sys.argv = [target, *args]
        runpy.run_module(target, run_name="__main__", alter_sys=True)
    else:
        sys.argv = ["-c", *args]
        exec(compile(target, "<string>", "exec"), {"__name__": "__main__"})


if __name__ == "__main__":
    main(sys.argv[1:])
