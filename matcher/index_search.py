"""Searching the candidate index among eligible creators only, widening an approximate search until it has k."""

from __future__ import annotations

import math

import faiss
import numpy as np

from features.threads import openmp_threads

__all__ = ["FilteredSearch"]

# Filtered flat search over-fetches unfiltered rows when at least this share is allowed (else k/share is large).
OVERFETCH_MIN_SHARE = 0.2
OVERFETCH_MARGIN = 1.25
# Fewer queries than this are searched on one OpenMP thread: a service's single campaign gains nothing from a
# team whose threads wait on each other on a busy machine. One query at 100,000 creators (load average 6.7, median
# of 40): 24 ms of CPU and 48 ms wall on the default team, 5.5 ms and 12 ms on one thread. It also keeps a
# campaign matched alone equal to the batch: on several threads FAISS splits a lone query's scan over the rows,
# which moves its similarities' last bits; on one, a query gets the bits it gets among others.
SERIAL_QUERIES = 20


class FilteredSearch:
    """Top-k search with an eligibility mask, for CandidateIndex (which holds `index`, `meta`, `kind`, ...)."""

    def search(self, queries: np.ndarray, k: int, allowed: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Top-k rows per query by inner product, only among `allowed` rows (a boolean mask) when given.

        Flat results are exact, filtered or not. An approximate index searches 1/share-allowed wider when
        filtered, and a query that still comes back with fewer than min(k, allowed rows) is searched again wider
        (ivf: doubling nprobe up to every list, which is exact; hnsw: doubling ef_search, then an exact scan), so
        a selective filter never starves the caller. Fewer than SERIAL_QUERIES queries run on one thread.

        Returns:
            (similarities, positions), each of shape (n_queries, k); position -1 where fewer exist.
        """
        with openmp_threads(1 if len(queries) < SERIAL_QUERIES else None):
            return self._search(queries, k, allowed)

    def _search(self, queries: np.ndarray, k: int, allowed: np.ndarray | None) -> tuple[np.ndarray, np.ndarray]:
        queries = np.ascontiguousarray(queries, dtype=np.float32)
        if queries.ndim != 2 or queries.shape[1] != self.meta["dimension"]:
            raise ValueError(f"Got queries of shape {queries.shape}; expected (n, {self.meta['dimension']})")
        k = max(1, min(k, len(self)))
        bitmap = selector = None
        wanted, share = k, 1.0
        if allowed is not None:
            allowed = np.asarray(allowed, dtype=bool)
            if allowed.shape != (len(self),):
                raise ValueError(f"Got an allowed mask of shape {allowed.shape}; expected ({len(self)},)")
            wanted = min(k, int(allowed.sum()))
            share = max(float(allowed.mean()), 1 / len(self))
            bitmap = np.packbits(allowed, bitorder="little")
            selector = faiss.IDSelectorBitmap(len(self), faiss.swig_ptr(bitmap))
        # The selector reads `bitmap` through a raw pointer, so it stays referenced here until the search returns.
        if self.kind == "flat":
            if selector is None:
                return self.index.search(queries, k)
            if share >= OVERFETCH_MIN_SHARE:
                return self._flat_overfetch(queries, k, allowed, selector, wanted, share)
            return self.index.search(queries, k, params=faiss.SearchParameters(sel=selector))
        return self._approximate(queries, k, selector, wanted, share)

    def _approximate(self, queries: np.ndarray, k: int, selector, wanted: int, share: float):
        """ivf or hnsw search, widened for the queries that come back with fewer than `wanted` rows."""
        # ivf at nprobe = nlist scans every row, which is exact; an hnsw search as wide as the index is the limit.
        limit = self.meta["nlist"] if self.kind == "ivf" else len(self)
        # A filter hides a share of every list or neighbourhood searched; searching 1/share as wide keeps the
        # number of allowed rows seen, hence recall, about what the unfiltered search has.
        base = self.nprobe if self.kind == "ivf" else max(self.ef_search, k)
        width = min(math.ceil(base / share), max(limit, base))
        sims, positions = self.index.search(queries, k, params=self._params(selector, width))
        short = np.flatnonzero((positions >= 0).sum(axis=1) < wanted)
        while len(short) and width < limit:
            width = min(2 * width, limit)
            sims[short], positions[short] = self.index.search(queries[short], k, params=self._params(selector, width))
            short = short[(positions[short] >= 0).sum(axis=1) < wanted]
        if len(short):  # hnsw only: its graph can miss rows a selective filter leaves isolated
            storage = faiss.downcast_index(self.index.storage)
            params = None if selector is None else faiss.SearchParameters(sel=selector)
            sims[short], positions[short] = storage.search(queries[short], k, params=params)
        return sims, positions

    def _flat_overfetch(self, queries, k: int, allowed, selector, wanted: int, share: float):
        """Exact filtered top-k from an unfiltered search for extra rows, dropping those not allowed.

        FAISS checks a selector pair by pair, off its BLAS path: about 7x slower on the whole index (see
        benchmarks/ann.py). Where the unfiltered top `fetch` holds `wanted` allowed rows, they are exactly the
        filtered top rows; the queries where it does not are searched again with the selector.
        """
        fetch = min(len(self), math.ceil(k / share * OVERFETCH_MARGIN) + 16)
        sims, positions = self.index.search(queries, fetch)
        keep = (positions >= 0) & allowed[np.maximum(positions, 0)]
        order = np.argsort(~keep, axis=1, kind="stable")[:, :k]  # allowed rows first, in rank order
        sims, positions = np.take_along_axis(sims, order, axis=1), np.take_along_axis(positions, order, axis=1)
        missing = ~np.take_along_axis(keep, order, axis=1)
        sims[missing], positions[missing] = -np.finfo(np.float32).max, -1  # FAISS's marks for "no row"
        short = np.flatnonzero(keep.sum(axis=1) < wanted)
        if len(short):
            params = faiss.SearchParameters(sel=selector)
            sims[short], positions[short] = self.index.search(queries[short], k, params=params)
        return sims, positions

    def _params(self, selector, width: int):
        if self.kind == "ivf":
            return faiss.SearchParametersIVF(sel=selector, nprobe=width)
        return faiss.SearchParametersHNSW(sel=selector, efSearch=width)
