"""ONIX conversion with compiled product shapes against the walk of lxml's tree, one core.

``convert_batch`` on 1 MB batches of simulator products, as a worker converts them, each side
in a fresh state (no shape compiled: what every dump's processes start with), interleaved,
best of ``ROUNDS``; microseconds per product:

- the simulator's catalogue (its product shapes repeat, as a publisher's feed does);
- the same products, each given one element of its own (no shape ever repeats: the worst case
  for the shapes, which then stop being computed after ``_WINDOW`` products).

    python -m benchmarks.bench_onix_shapes [PRODUCTS] [ROUNDS]
"""

from __future__ import annotations

import sys
import time

from harvester.parse.onix import convert_batch, read_header
from harvester.parse.onix_shapes import Shapes
from harvester.parse.onix_split import Batch, OnixSplitter, Prologue
from harvester.sim.books import BookCatalogue


def split_batches(body: bytes) -> tuple[Prologue, list[Batch]]:
    splitter = OnixSplitter()
    pieces = [*splitter.feed(body), *splitter.close()]
    prologue = next(p for p in pieces if isinstance(p, Prologue))
    return prologue, list(splitter.join([p for p in pieces if isinstance(p, Batch)]))


def onix_message(products: list[str]) -> bytes:
    head = (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        '<ONIXMessage xmlns="http://ns.editeur.org/onix/3.1/reference" release="3.1">'
        "<Header><SentDateTime>20261120T000000Z</SentDateTime></Header>\n"
    )
    return (head + "\n".join(products) + "\n</ONIXMessage>\n").encode()


def _time(prologue: Prologue, batches: list[Batch], shapes: Shapes | None) -> float:
    src = read_header(prologue.document)
    t = time.perf_counter()
    for b in batches:
        convert_batch(prologue.root_open, prologue.root_tag, b.data, src, shapes)
    return time.perf_counter() - t


def main() -> None:
    n = int(sys.argv[1]) if sys.argv[1:] else 30_000
    rounds = int(sys.argv[2]) if sys.argv[2:] else 3
    books = BookCatalogue(n, 1)
    plain = [books.product(pos) for pos in range(n)]
    unique = [p.replace("</Product>", f"<Own{i}>x</Own{i}></Product>") for i, p in enumerate(plain)]
    print(f"{n:,} products, one core, fresh shapes each round, best of {rounds} (us/product)")
    for name, products in (("repeating shapes", plain), ("no shape repeats", unique)):
        prologue, batches = split_batches(onix_message(products))
        best = {"walk": 1e9, "shapes": 1e9}
        for _ in range(rounds):
            best["walk"] = min(best["walk"], _time(prologue, batches, None))
            best["shapes"] = min(best["shapes"], _time(prologue, batches, Shapes()))
        walk, shapes = (best[k] / n * 1e6 for k in ("walk", "shapes"))
        print(f"{name:17s} walk {walk:6.1f}  shapes {shapes:6.1f}  shapes/walk {shapes / walk:.2f}")


if __name__ == "__main__":
    main()
