"""The generator's driver: world -> claims -> fraud -> items (chunked) -> money -> tables."""

from __future__ import annotations

import concurrent.futures as cf_futures
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Literal

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from fraudkit.io import LABEL_TABLES, TABLES, Batch, Labels, arrow_schema, atomic_dir, validate_batch

from . import _arrow as A
from ._catalogue import KIND_NAMES, PANELS, build_catalogue
from ._claims import F_OVERCHARGE, F_SWAP, ClaimFrame, drift_day, normal_claims
from ._fraud import BIT, PATIENT_SCHEMES, PROVIDER_SCHEMES, SCHEME_NAMES, plant_fraud
from ._items import ItemContext, generate_items, price_table
from ._money import settle
from ._scenario import Scenario, ScenarioError
from ._world import World, build_world

Progress = Callable[[str, int, int], None]
Format = Literal["parquet", "csv"]

#: Claims per item-generation block; fixed so that output never depends on parts or format.
BLOCK = 65_536

#: From this many claims, ``generate_to`` with parts uses one worker process per core by default.
PARALLEL_FROM = 500_000

_CARE = ("outpatient", "chronic", "inpatient", "pharmacy")
_PTYPE = ("hospital", "clinic", "pharmacy")
_PPREFIX = ("H", "C", "P")


@dataclass
class Summary:
    """What a generation run produced."""

    claims: int
    items: int
    patients: int
    providers: int
    fraudulent_claims: int
    providers_by_scheme: dict[str, int] = field(default_factory=dict)
    patients_by_scheme: dict[str, int] = field(default_factory=dict)
    claims_by_scheme: dict[str, int] = field(default_factory=dict)


def _rng(seed: int, *key: int) -> np.random.Generator:
    return np.random.default_rng(np.random.SeedSequence(entropy=int(seed), spawn_key=tuple(key)))


def _check_args(n_claims: int, seed: int) -> None:
    if not isinstance(n_claims, (int, np.integer)) or n_claims < 100:
        raise ScenarioError(f"the number of claims (--claims) must be a whole number of at least 100, got {n_claims!r}.")
    if not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ScenarioError(f"seed must be a non-negative whole number, got {seed!r}.")


class _Plan:
    """Everything decided before items are generated: world, sorted claim skeletons, fraud plan."""

    def __init__(self, sc: Scenario, n_claims: int, seed: int):
        self.sc, self.n, self.seed = sc, n_claims, seed
        self.cat = build_catalogue(_rng(seed, 0))
        self.world: World = build_world(sc, n_claims, self.cat, _rng(seed, 1))
        margin = 1.04 + 4.0 / np.sqrt(n_claims)
        normal = normal_claims(sc, self.world, self.cat, int(round(n_claims * margin)), _rng(seed, 2))
        claims, self.fraud = plant_fraud(sc, self.world, self.cat, normal, _rng(seed, 3), n_claims)
        del normal
        keep = self._trim(claims, _rng(seed, 4))
        # settlement order: by date, then provider and patient (claim ids follow it)
        order = keep[np.lexsort((claims.patient[keep], claims.provider[keep], claims.admit[keep]))]
        del keep
        self.claims: ClaimFrame = claims.take(order)
        del claims, order
        dd = drift_day(sc)
        d = sc.section("drift")
        self.ctx = ItemContext(
            cat=self.cat, world=self.world, price=price_table(self.cat, d["drug_price"], d["service_price"]), drift_day=dd,
            drug_rows=None, n_drug_rows=None, phantom_tpl=self.fraud.phantom_tpl, n_phantom=self.fraud.n_phantom,
            oc_dup=self.fraud.oc_dup, oc_price=self.fraud.oc_price, oc_factor=self.fraud.oc_factor, swap_p=self.fraud.swap_p,
            codes={c: i for i, c in enumerate(self.cat.codes)},
        )
        otc = np.flatnonzero((self.cat.kind == 0) & self.cat.otc)
        rows = np.full((len(self.cat.icd) + 1, max(self.cat.out_drugs.shape[1], len(otc))), -1, dtype=np.int64)
        rows[:-1, : self.cat.out_drugs.shape[1]] = self.cat.out_drugs
        rows[-1, : len(otc)] = otc
        self.ctx.drug_rows = rows
        codes = self.ctx.codes
        panels = sorted((codes[k], [codes[c] for c in v]) for k, v in PANELS.items())
        self.ctx.panel_items = np.array([p for p, _ in panels], dtype=np.int64)
        self.ctx.panel_parts = np.array([parts + [-1] * (3 - len(parts)) for _, parts in panels], dtype=np.int64)
        self.ctx.n_drug_rows = np.concatenate([self.cat.n_out_drugs, [len(otc)]])

    def _trim(self, claims: ClaimFrame, rng: np.random.Generator) -> np.ndarray:
        """Rows to keep: random plain normal claims are dropped so that exactly ``n`` remain."""
        excess = claims.n - self.n
        if excess <= 0:
            if excess < 0:
                raise ScenarioError(f"could not generate {self.n:,} claims with this scenario (got {claims.n:,}); "
                                    "the planted fraud may be too large for so few claims")
            return np.arange(claims.n)
        plain = np.flatnonzero(~claims.protected & (claims.fraud == 0))
        if len(plain) < excess:
            raise ScenarioError(f"the planted fraud adds more claims than {self.n:,}; ask for more claims or plant less fraud")
        drop = rng.choice(plain, size=excess, replace=False)
        keep = np.ones(claims.n, bool)
        keep[drop] = False
        return np.flatnonzero(keep)

    @property
    def n_blocks(self) -> int:
        return (self.n + BLOCK - 1) // BLOCK


def _items_table(plan: _Plan, lo: int, chunk) -> pa.Table:
    cf = plan.claims
    claim = chunk.claim + lo
    day = cf.admit[claim].astype(np.int64) + chunk.day
    ids = A.fixed_ids("C", np.arange(lo, lo + len(chunk.total)) + 1, _id_width(plan.n))
    cols = [
        ids.take(pa.array(chunk.claim)),
        A.ints(chunk.line_no),
        pa.array(plan.cat.codes, type=pa.string()).take(pa.array(chunk.item)),
        pa.array(list(KIND_NAMES), type=pa.string()).take(pa.array(plan.cat.kind[chunk.item].astype(np.int64))),
        A.floats(chunk.qty),
        A.floats(chunk.price / 100.0),
        A.money(chunk.amount),
        A.dates(np.datetime64(plan.sc.period_start, "D"), day),
    ]
    return pa.Table.from_arrays(cols, schema=arrow_schema(TABLES["items"]))


def _id_width(n: int) -> int:
    return max(8, len(str(n)))


def _bits_to_text(bits: np.ndarray) -> pa.Array:
    uniq, inv = np.unique(bits, return_inverse=True)
    names = [";".join(name for name in SCHEME_NAMES if b & BIT[name]) for b in uniq]
    return pa.array(names, type=pa.string()).take(pa.array(inv.astype(np.int64)))


class _TableWriter:
    """Writes one table as a single file or a folder of parts, chunk by chunk."""

    def __init__(self, root: Path, name: str, fmt: Format, parts: int | None, n_chunks: int, schema: pa.Schema | None = None):
        self.schema = schema if schema is not None else arrow_schema(TABLES[name])
        self.fmt, self.parts, self.n_chunks = fmt, parts, max(n_chunks, 1)
        self.root, self.name = root, name
        self.writers: dict[int, object] = {}

    def _open(self, part: int):
        if part in self.writers:
            return self.writers[part]
        (self.root / self.name).parent.mkdir(parents=True, exist_ok=True)
        if self.parts:
            folder = self.root / self.name
            folder.mkdir(exist_ok=True)
            w = pq.ParquetWriter(folder / f"part-{part:05d}.parquet", self.schema, compression="zstd")
        elif self.fmt == "parquet":
            w = pq.ParquetWriter(self.root / f"{self.name}.parquet", self.schema, compression="zstd")
        else:
            w = pacsv.CSVWriter(self.root / f"{self.name}.csv", self.schema,
                                write_options=pacsv.WriteOptions(quoting_style="needed"))
        self.writers[part] = w
        return w

    def write(self, table: pa.Table, chunk: int) -> None:
        part = (chunk * self.parts) // self.n_chunks if self.parts else 0
        self._open(part).write_table(table)

    def close(self) -> None:
        for p in range(self.parts or 1):
            self._open(p)  # every part exists, even an empty one
        for w in self.writers.values():
            w.close()


def _run(sc: Scenario, n_claims: int, seed: int, item_sink: Callable[[Callable[[], pa.Table], int], None] | None,
         progress: Progress | None, part_files: list[Path] | None = None,
         workers: int = 1) -> tuple[_Plan, dict[str, pa.Table]]:
    """Plan the claims, generate their item lines block by block, settle the money.

    Item lines go to ``item_sink(make_table, block)`` in block order, or, with ``part_files``
    (one path per Parquet part of ``items/``), each part is generated and written by one of
    ``workers`` processes. Every block draws from its own seed, so the files are the same
    bytes whatever the number of workers.
    """
    plan = _Plan(sc, n_claims, seed)
    cf, world = plan.claims, plan.world
    n = cf.n
    if progress:
        progress("items", 0, n)
    total = np.zeros(n, np.int64)
    eligible = np.zeros(n, np.int64)
    swap_hit = np.zeros(n, bool)
    oc_hit = np.zeros(n, bool)
    n_items = 0
    done = 0

    def keep(lo: int, hi: int, stats: tuple) -> None:
        nonlocal n_items, done
        total[lo:hi], eligible[lo:hi] = stats[0], stats[1]
        # labels stay honest: a claim flagged for swapping or over-charging counts only if a line was changed
        swap_hit[lo:hi], oc_hit[lo:hi] = stats[2], stats[3]
        n_items += stats[4]
        done += hi - lo
        if progress:
            progress("items", done, n)

    if part_files is not None:
        for lo, hi, stats in _parts_in_parallel(plan, part_files, workers):
            keep(lo, hi, stats)
    else:
        for b in range(plan.n_blocks):
            lo, hi, chunk = _block(plan, b)
            keep(lo, hi, _block_stats(chunk))
            # the sink builds the Arrow table (in the writer thread when writing files)
            item_sink(lambda lo=lo, chunk=chunk: _items_table(plan, lo, chunk), b)
    cf.fraud[((cf.flags & F_SWAP) > 0) & ~swap_hit] &= ~BIT["drug_swapping"]
    cf.fraud[((cf.flags & F_OVERCHARGE) > 0) & ~oc_hit] &= ~BIT["over_charging"]
    seq = np.arange(n)
    fund = settle(sc, world, cf.patient, cf.provider, cf.care, cf.doctor, cf.admit, seq, eligible)
    tables = _tables(plan, total, eligible, fund, _rng(seed, 6))
    tables["_n_items"] = n_items
    return plan, tables


def _block(plan: _Plan, b: int):
    """Item lines of block ``b`` (claims ``[b·BLOCK, (b+1)·BLOCK)``), drawn from the block's own seed."""
    lo, hi = b * BLOCK, min(plan.claims.n, (b + 1) * BLOCK)
    return lo, hi, generate_items(plan.claims.take(np.arange(lo, hi)), plan.ctx, _rng(plan.seed, 5, b))


def _block_stats(chunk) -> tuple:
    return chunk.total, chunk.eligible, chunk.swapped, chunk.overcharged, len(chunk.claim)


def _part_blocks(part: int, parts: int, n_blocks: int) -> list[int]:
    """The blocks written to part ``part`` (as :meth:`_TableWriter.write` assigns them)."""
    return [b for b in range(n_blocks) if (b * parts) // max(n_blocks, 1) == part]


#: The plan a forked worker process generates from (set in the parent just before forking).
_FORK_PLAN: _Plan | None = None


def _write_part(path: Path, part: int, parts: int) -> list[tuple]:
    """Worker task: generate the blocks of one part of ``items/`` and write them; returns each block's sums."""
    plan = _FORK_PLAN
    out = []
    with pq.ParquetWriter(path, arrow_schema(TABLES["items"]), compression="zstd") as writer:
        for b in _part_blocks(part, parts, plan.n_blocks):
            lo, hi, chunk = _block(plan, b)
            writer.write_table(_items_table(plan, lo, chunk))
            out.append((lo, hi, _block_stats(chunk)))
    return out


def _parts_in_parallel(plan: _Plan, part_files: list[Path], workers: int):
    """Yield ``(lo, hi, stats)`` of every block, in block order, while worker processes write the parts.

    The workers are forked from this process, so they share the plan without copying it.
    """
    global _FORK_PLAN
    import multiprocessing as mp

    parts = len(part_files)
    _FORK_PLAN = plan
    try:
        if workers <= 1 or parts <= 1 or "fork" not in mp.get_all_start_methods():
            for p, path in enumerate(part_files):
                yield from _write_part(path, p, parts)
            return
        with cf_futures.ProcessPoolExecutor(max_workers=min(workers, parts), mp_context=mp.get_context("fork")) as pool:
            futures = [pool.submit(_write_part, path, p, parts) for p, path in enumerate(part_files)]
            for f in futures:
                yield from f.result()
    finally:
        _FORK_PLAN = None


def _provider_labels(plan: _Plan) -> tuple[np.ndarray, np.ndarray]:
    cf, world = plan.claims, plan.world

    def honest(schemes, actors_by_scheme, claim_owner, n):
        # an actor is labelled with a scheme only if at least one of its claims carries it
        bits = np.zeros(n, np.int64)
        for name in schemes:
            actors = actors_by_scheme.get(name, np.empty(0, np.int64)).astype(np.int64)
            has = np.zeros(n, bool)
            has[claim_owner[(cf.fraud & BIT[name]) > 0]] = True
            bits[actors[has[actors]]] |= BIT[name]
        return bits

    return (honest(PROVIDER_SCHEMES, plan.fraud.provider_actors, cf.provider, world.n_providers),
            honest(PATIENT_SCHEMES, plan.fraud.patient_actors, cf.patient, world.n_patients))


def _noise(bits: np.ndarray, p: float, rng: np.random.Generator, names: tuple[str, ...]) -> np.ndarray:
    """Flip labels: a share ``p`` of labelled entities lose their label, as many others gain one."""
    if p <= 0 or len(bits) == 0:
        return bits
    bits = bits.copy()
    fraud = np.flatnonzero(bits != 0)
    clean = np.flatnonzero(bits == 0)
    k = int(rng.binomial(len(fraud), p)) if len(fraud) else 0
    if k:
        bits[rng.choice(fraud, size=k, replace=False)] = 0
        gain = rng.choice(clean, size=min(k, len(clean)), replace=False)
        bits[gain] = np.array([BIT[n] for n in names])[rng.integers(0, len(names), len(gain))]
    return bits


def _tables(plan: _Plan, total, eligible, fund, rng) -> dict[str, pa.Table]:
    sc, cf, world = plan.sc, plan.claims, plan.world
    pid = world.prov_number
    ptype = world.prov_type.astype(np.int64)
    prov_ids_np = np.array([f"{_PPREFIX[t]}{k:05d}" for t, k in zip(ptype, pid)])
    regions = np.array(world.regions)
    patients = pa.Table.from_arrays([
        A.fixed_ids("M", np.arange(1, world.n_patients + 1), 8),
        A.ints(world.pat_birth),
        A.dictionary(["M", "F"], world.pat_sex),
        A.dictionary(["EBMI", "RBMI"], world.pat_scheme),
        A.bools(world.pat_retired),
        A.dictionary(regions, world.pat_region),
    ], schema=arrow_schema(TABLES["patients"]))
    providers = pa.Table.from_arrays([
        pa.array(prov_ids_np, type=pa.string()),
        A.dictionary(_PTYPE, ptype),
        A.ints(world.prov_tier), A.dictionary(regions, world.prov_region), A.ints(world.prov_beds),
    ], schema=arrow_schema(TABLES["providers"]))
    prov_bits, pat_bits = _provider_labels(plan)
    p = sc.section("fraud")["label_noise"]
    claim_bits = _noise(cf.fraud.astype(np.int64), p, rng, SCHEME_NAMES)
    prov_bits = _noise(prov_bits, p, rng, PROVIDER_SCHEMES)
    pat_bits = _noise(pat_bits, p, rng, PATIENT_SCHEMES)
    labels = {
        "providers": pa.Table.from_arrays([providers.column(0).combine_chunks(), _bits_to_text(prov_bits)],
                                          schema=arrow_schema(LABEL_TABLES["providers"])),
        "patients": pa.Table.from_arrays([patients.column(0).combine_chunks(), _bits_to_text(pat_bits)],
                                         schema=arrow_schema(LABEL_TABLES["patients"])),
    }
    money = {"total": total, "eligible": eligible, "fund": fund, "prov_ids": pa.array(prov_ids_np, type=pa.string())}
    return {"patients": patients, "providers": providers, "labels": labels, "_money": money,
            "_bits": (claim_bits, prov_bits, pat_bits)}


def _claims_slice(plan: _Plan, tables, lo: int, hi: int) -> tuple[pa.Table, pa.Table]:
    """Rows ``lo:hi`` of the claims table and of labels/claims."""
    cf, m = plan.claims, tables["_money"]
    start = np.datetime64(plan.sc.period_start, "D")
    sl = slice(lo, hi)
    total, eligible, fund = m["total"][sl], m["eligible"][sl], m["fund"][sl]
    claim_ids = A.fixed_ids("C", np.arange(lo + 1, hi + 1), _id_width(plan.n))
    admit = cf.admit[sl].astype(np.int64)
    claims = pa.Table.from_arrays([
        claim_ids,
        A.fixed_ids("M", cf.patient[sl].astype(np.int64) + 1, 8),
        m["prov_ids"].take(pa.array(cf.provider[sl])),
        A.fixed_ids("D", cf.doctor[sl].astype(np.int64) + 1, 6, valid=cf.doctor[sl] >= 0),
        A.dictionary(_CARE, cf.care[sl]),
        A.dates(start, admit), A.dates(start, admit + cf.los[sl]),
        A.dictionary(plan.cat.icd, cf.diag[sl]),
        A.money(total), A.money(eligible), A.money(fund), A.money(total - fund),
    ], schema=arrow_schema(TABLES["claims"]))
    labels = pa.Table.from_arrays([claim_ids, _bits_to_text(tables["_bits"][0][sl])], schema=arrow_schema(LABEL_TABLES["claims"]))
    return claims, labels


def _summary(plan: _Plan, tables) -> Summary:
    claim_bits, prov_bits, pat_bits = tables["_bits"]
    return Summary(
        claims=plan.claims.n, items=tables["_n_items"], patients=plan.world.n_patients, providers=plan.world.n_providers,
        fraudulent_claims=int((claim_bits != 0).sum()),
        providers_by_scheme={n: int(((prov_bits & BIT[n]) > 0).sum()) for n in PROVIDER_SCHEMES},
        patients_by_scheme={n: int(((pat_bits & BIT[n]) > 0).sum()) for n in PATIENT_SCHEMES},
        claims_by_scheme={n: int(((claim_bits & BIT[n]) > 0).sum()) for n in SCHEME_NAMES},
    )


def _to_pandas(table: pa.Table) -> pd.DataFrame:
    return table.to_pandas(date_as_object=False, types_mapper=lambda t: pd.StringDtype("pyarrow", na_value=np.nan) if pa.types.is_string(t) else None)


# --------------------------------------------------------------------------- public
def generate(scenario: Scenario, n_claims: int | None = None, seed: int = 0, *, validate: bool = True,
             progress: Progress | None = None) -> tuple[Batch, Labels]:
    """Generate a labelled synthetic batch in memory.

    Parameters
    ----------
    scenario : Scenario
        What to generate (see ``synthetic/default.yaml``).
    n_claims : int, optional
        Number of claims; the scenario's ``claims`` when omitted.
    seed : int
        Every random choice follows from it: same scenario, seed and claims give the same batch.
    validate : bool
        Check the batch against the contract (``fraudkit.io.validate_batch``) before returning it.

    Returns
    -------
    (Batch, Labels)

    Examples
    --------
    >>> from fraudkit.synthetic import Scenario, generate
    >>> batch, labels = generate(Scenario.from_dict({"claims": 3000}), seed=1)
    >>> len(batch.claims)
    3000
    """
    n_claims = scenario.claims if n_claims is None else n_claims
    _check_args(n_claims, seed)
    items: list[pa.Table] = []
    plan, tables = _run(scenario, int(n_claims), int(seed), lambda make, b: items.append(make()), progress)
    item_table = pa.concat_tables(items) if items else arrow_schema(TABLES["items"]).empty_table()
    claims, claim_labels = _claims_slice(plan, tables, 0, plan.n)
    tables["labels"]["claims"] = claim_labels
    batch = Batch(
        patients=_to_pandas(tables["patients"]), providers=_to_pandas(tables["providers"]),
        claims=_to_pandas(claims), items=_to_pandas(item_table),
        source=f"<synthetic {scenario.name} seed={seed}>",
    )
    if validate:
        batch = validate_batch(batch)
    labels = Labels(**{k: _to_pandas(tables["labels"][k]) for k in ("claims", "providers", "patients")})
    for frame in (labels.claims, labels.providers, labels.patients):
        frame["fraud_type"] = frame["fraud_type"].fillna("").astype(str)
    return batch, labels


def generate_to(scenario: Scenario, out: str | Path, n_claims: int | None = None, seed: int = 0,
                fmt: Format = "parquet", parts: int | None = None, *, progress: Progress | None = None,
                workers: int | None = None) -> Summary:
    """Generate a labelled batch and write it to folder ``out`` atomically (with ``labels/``).

    ``parts`` writes ``claims/`` and ``items/`` as folders of that many Parquet parts.
    Items are written block by block while the next block is generated, so memory
    stays bounded for large batches. With parts, ``workers`` processes generate and write
    the parts of ``items/`` side by side (default: one per core, for batches of at least
    :data:`PARALLEL_FROM` claims); the files are the same bytes whatever the number of workers.
    """
    n_claims = scenario.claims if n_claims is None else n_claims
    _check_args(n_claims, seed)
    if fmt not in ("parquet", "csv"):
        raise ScenarioError(f"unknown format {fmt!r}: use 'parquet' or 'csv'.")
    if parts is not None:
        if fmt != "parquet":
            raise ScenarioError("parts are written as Parquet files: use --format parquet with --parts.")
        if parts < 1:
            raise ScenarioError(f"parts must be at least 1, got {parts}.")
    if workers is None:
        workers = (os.cpu_count() or 1) if n_claims >= PARALLEL_FROM else 1
    if workers < 1:
        raise ScenarioError(f"workers must be at least 1, got {workers}.")
    with atomic_dir(out) as tmp:
        n_blocks = (int(n_claims) + BLOCK - 1) // BLOCK
        if parts is not None and workers > 1 and parts > 1:
            (tmp / "items").mkdir(parents=True)
            files = [tmp / "items" / f"part-{p:05d}.parquet" for p in range(parts)]
            plan, tables = _run(scenario, int(n_claims), int(seed), None, progress, part_files=files, workers=workers)
        else:
            plan, tables = _write_items_in_order(scenario, int(n_claims), int(seed), tmp, fmt, parts, n_blocks, progress)
        _write_rest(plan, tables, tmp, fmt, parts, n_blocks)
    return _summary(plan, tables)


def _write_items_in_order(scenario, n_claims, seed, tmp, fmt, parts, n_blocks, progress):
    """Generate in this process, writing each block of item lines in a writer thread while the next is generated."""
    items_w = _TableWriter(tmp, "items", fmt, parts, n_blocks)
    with cf_futures.ThreadPoolExecutor(max_workers=1) as pool:
        pending: list[cf_futures.Future] = []

        def sink(make: Callable[[], pa.Table], block: int) -> None:
            while pending:  # at most one block waits to be written
                pending.pop().result()
            pending.append(pool.submit(lambda: items_w.write(make(), block)))

        plan, tables = _run(scenario, n_claims, seed, sink, progress)
        for f in pending:
            f.result()
    items_w.close()
    return plan, tables


def _write_rest(plan, tables, tmp, fmt, parts, n_blocks) -> None:
    """Claims, patients, providers and labels, once every claim's money is known."""
    # claims and labels/claims block by block, so that no whole-table copy is held
    claims_w = _TableWriter(tmp, "claims", fmt, parts, n_blocks)
    labels_w = _TableWriter(tmp, "labels/claims", fmt, None, n_blocks, schema=arrow_schema(LABEL_TABLES["claims"]))
    for b in range(n_blocks):
        lo, hi = b * BLOCK, min(plan.n, (b + 1) * BLOCK)
        claims, claim_labels = _claims_slice(plan, tables, lo, hi)
        claims_w.write(claims, b)
        labels_w.write(claim_labels, b)
    claims_w.close()
    labels_w.close()
    for name in ("patients", "providers"):
        _write_whole(tables[name], tmp / name, fmt)
    for name, table in tables["labels"].items():
        _write_whole(table, tmp / "labels" / name, fmt)


def _write_whole(table: pa.Table, path: Path, fmt: Format) -> None:
    if fmt == "parquet":
        pq.write_table(table, path.with_suffix(".parquet"), compression="zstd")
    else:
        pacsv.write_csv(table, path.with_suffix(".csv"), write_options=pacsv.WriteOptions(quoting_style="needed"))


def catalogue(seed: int = 0) -> pd.DataFrame:
    """The item catalogue a run with ``seed`` uses: code, kind, catalogue (tertiary) price,
    share inside the insurance catalogue, and for drugs the days of treatment one unit lasts.

    Only for tests and analysis of synthetic batches: batches from elsewhere have their own catalogue.
    """
    cat = build_catalogue(_rng(seed, 0))
    return pd.DataFrame({
        "item_code": cat.codes, "item_kind": np.array(KIND_NAMES)[cat.kind], "price": cat.price / 100.0,
        "eligible_share": cat.eligible_share, "days_per_pack": cat.days_per_pack.astype(int),
        "drug_class": np.where(cat.drug_class >= 0, np.array(cat.class_names + ("",))[cat.drug_class], ""),
    })
