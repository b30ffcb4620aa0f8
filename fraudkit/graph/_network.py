"""The claims network: patients, doctors, institutions and pharmacies as sparse matrices."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

import networkx as nx
import numpy as np
import pandas as pd
import scipy.sparse as sp

#: Entities a :class:`ClaimsNetwork` can list with :meth:`ClaimsNetwork.ids`.
NETWORK_ENTITIES = ("provider", "patient", "doctor", "claim")

_EPOCH = np.datetime64("1970-01-01", "D")


def _codes(values, categories: pd.Index) -> np.ndarray:
    """Integer codes of ``values`` in ``categories`` (-1 where missing or unknown)."""
    return categories.get_indexer(pd.Index(values, dtype=object)).astype(np.int64)


def _column_codes(column: pd.Series, categories: pd.Index) -> np.ndarray:
    """:func:`_codes` of a claims column; Arrow string columns (the loader's) by Arrow's hash lookup."""
    if isinstance(column.dtype, pd.StringDtype) and column.dtype.storage == "pyarrow" and categories.is_unique:
        from fraudkit.features._prep import codes_in

        return codes_in(categories, column)
    return _codes(column.astype(str).to_numpy(), categories)


@dataclass(eq=False)
class ClaimsNetwork:
    """Multipartite network of a claims batch: patients, doctors and providers.

    Providers are institutions (``hospital``, ``clinic``) and retail ``pharmacy``.
    Every id is integer-coded (its position in ``patient_ids``, ``provider_ids``,
    ``doctor_ids``); claims are kept as parallel arrays of codes, and the relations
    as :mod:`scipy.sparse` CSR matrices:

    - ``patient_provider`` / ``patient_provider_money``: patients x providers,
      number of claims and fund paid;
    - ``patient_doctor`` / ``patient_doctor_money``: patients x doctors;
    - ``doctor_provider`` / ``doctor_provider_money``: doctors x providers.

    Build it with :meth:`from_batch` (or :meth:`from_arrays` for raw edges).

    Examples
    --------
    >>> import pandas as pd
    >>> claims = pd.DataFrame({"claim_id": ["c1", "c2", "c3"], "patient_id": ["A", "A", "B"],
    ...                        "provider_id": ["C1", "R1", "C1"], "doctor_id": ["D1", None, "D1"],
    ...                        "fund_paid": [100.0, 20.0, 50.0]})
    >>> providers = pd.DataFrame({"provider_id": ["C1", "R1"], "provider_type": ["clinic", "pharmacy"]})
    >>> net = ClaimsNetwork.from_frames(claims, providers)
    >>> net
    ClaimsNetwork(patients=2, providers=2, doctors=1, claims=3, patient-provider edges=3)
    >>> list(net.ids("provider")), net.patient_provider.toarray().tolist()
    (['C1', 'R1'], [[1, 1], [1, 0]])
    """

    patient_ids: pd.Index
    provider_ids: pd.Index
    doctor_ids: pd.Index
    claim_ids: pd.Index
    provider_type: np.ndarray
    claim_patient: np.ndarray
    claim_provider: np.ndarray
    claim_doctor: np.ndarray
    claim_money: np.ndarray
    claim_day: np.ndarray | None = None
    patient_region: np.ndarray | None = None
    provider_region: np.ndarray | None = None
    _cache: dict = field(default_factory=dict, repr=False)

    # ------------------------------------------------------------------ construction
    @classmethod
    def from_batch(cls, batch, start=None, end=None) -> ClaimsNetwork:
        """Network of a :class:`fraudkit.io.Batch`, optionally of claims admitted in ``[start, end)``.

        Parameters
        ----------
        batch : Batch
            A validated batch (``fraudkit.io.load_batch``).
        start, end : date-like or None
            Keep only claims whose ``admit_date`` falls in ``[start, end)`` (a time window);
            every patient and provider of the batch keeps its id either way.
        """
        rows = None
        if start is None and end is None and hasattr(batch, "rows_of"):  # the validator's lookups, kept by the batch
            rows = (batch.rows_of("claims", "patient_id"), batch.rows_of("claims", "provider_id"))
        return cls.from_frames(batch.claims, batch.providers, batch.patients, start=start, end=end, rows=rows)

    @classmethod
    def from_frames(cls, claims: pd.DataFrame, providers: pd.DataFrame, patients: pd.DataFrame | None = None,
                    start=None, end=None, rows: tuple[np.ndarray, np.ndarray] | None = None) -> ClaimsNetwork:
        """Network from contract-shaped ``claims`` and ``providers`` (and optionally ``patients``) frames.

        ``rows``: each claim's row in ``patients`` and in ``providers``, when already looked up
        (:meth:`fraudkit.io.Batch.rows_of`); only with ``patients`` and without a time window.
        """
        if rows is not None and (patients is None or start is not None or end is not None):
            raise ValueError("rows= needs patients= and no start/end window")
        if start is not None or end is not None:
            day = pd.to_datetime(claims["admit_date"])
            keep = np.ones(len(claims), dtype=bool)
            if start is not None:
                keep &= (day >= pd.Timestamp(start)).to_numpy()
            if end is not None:
                keep &= (day < pd.Timestamp(end)).to_numpy()
            claims = claims[keep]
        provider_ids = pd.Index(providers["provider_id"].astype(str).to_numpy(), dtype=object, name="provider_id")
        provider_type = providers["provider_type"].astype(str).to_numpy(dtype=object)
        provider_region = providers["region"].astype(str).to_numpy(dtype=object) if "region" in providers else None
        if patients is not None:
            patient_ids = pd.Index(patients["patient_id"].astype(str).to_numpy(), dtype=object, name="patient_id")
            patient_region = patients["region"].astype(str).to_numpy(dtype=object) if "region" in patients else None
        else:
            patient_ids = pd.Index(pd.unique(claims["patient_id"].astype(str).to_numpy()), dtype=object, name="patient_id")
            patient_region = None
        doctor_col = claims["doctor_id"] if "doctor_id" in claims else pd.Series([None] * len(claims))
        doctors = doctor_col.dropna().astype(str)
        doctor_ids = pd.Index(np.sort(pd.unique(doctors.to_numpy())), dtype=object, name="doctor_id")
        claim_doctor = np.full(len(claims), -1, dtype=np.int64)
        has_doctor = doctor_col.notna().to_numpy()
        claim_doctor[has_doctor] = _codes(doctors.to_numpy(), doctor_ids)
        claim_day = None
        if "admit_date" in claims:
            claim_day = (pd.to_datetime(claims["admit_date"]).to_numpy().astype("datetime64[D]") - _EPOCH).astype(np.int64)
        if rows is not None:
            claim_patient, claim_provider = (np.asarray(r, dtype=np.int64) for r in rows)
        else:
            claim_patient = _column_codes(claims["patient_id"], patient_ids)
            claim_provider = _column_codes(claims["provider_id"], provider_ids)
        if (claim_patient < 0).any() or (claim_provider < 0).any():
            raise ValueError("claims refer to patients or providers missing from the patients/providers tables")
        money = claims["fund_paid"].to_numpy(dtype=float) if "fund_paid" in claims else np.ones(len(claims))
        return cls(
            patient_ids=patient_ids, provider_ids=provider_ids, doctor_ids=doctor_ids,
            claim_ids=pd.Index(claims["claim_id"].astype(str).to_numpy(), dtype=object, name="claim_id"),
            provider_type=provider_type, claim_patient=claim_patient, claim_provider=claim_provider,
            claim_doctor=claim_doctor, claim_money=money, claim_day=claim_day,
            patient_region=patient_region, provider_region=provider_region,
        )

    @classmethod
    def from_arrays(cls, patient: np.ndarray, provider: np.ndarray, n_patients: int | None = None,
                    n_providers: int | None = None, provider_type=None, doctor: np.ndarray | None = None,
                    money: np.ndarray | None = None) -> ClaimsNetwork:
        """Network from integer-coded claim arrays (ids become ``"P<code>"``, ``"H<code>"``, ``"D<code>"``).

        Handy for benchmarks and tests that build large graphs without a batch.
        """
        patient = np.asarray(patient, dtype=np.int64)
        provider = np.asarray(provider, dtype=np.int64)
        n_patients = int(patient.max()) + 1 if n_patients is None else n_patients
        n_providers = int(provider.max()) + 1 if n_providers is None else n_providers
        if doctor is None:
            doctor = np.full(len(patient), -1, dtype=np.int64)
        doctor = np.asarray(doctor, dtype=np.int64)
        n_doctors = int(doctor.max()) + 1 if len(doctor) and doctor.max() >= 0 else 0
        if provider_type is None:
            provider_type = np.full(n_providers, "clinic", dtype=object)
        return cls(
            patient_ids=pd.Index([f"P{i}" for i in range(n_patients)], dtype=object, name="patient_id"),
            provider_ids=pd.Index([f"H{i}" for i in range(n_providers)], dtype=object, name="provider_id"),
            doctor_ids=pd.Index([f"D{i}" for i in range(n_doctors)], dtype=object, name="doctor_id"),
            claim_ids=pd.RangeIndex(len(patient), name="claim_id"),
            provider_type=np.asarray(provider_type, dtype=object), claim_patient=patient, claim_provider=provider,
            claim_doctor=doctor, claim_money=np.ones(len(patient)) if money is None else np.asarray(money, dtype=float),
        )

    # ------------------------------------------------------------------ ids and sizes
    def ids(self, entity: str) -> pd.Index:
        """Ids of ``entity`` ("provider", "patient", "doctor" or "claim"), in code order."""
        try:
            return {"provider": self.provider_ids, "patient": self.patient_ids,
                    "doctor": self.doctor_ids, "claim": self.claim_ids}[entity]
        except KeyError:
            raise ValueError(f"entity must be one of {NETWORK_ENTITIES}, got {entity!r}") from None

    @property
    def n_patients(self) -> int:
        return len(self.patient_ids)

    @property
    def n_providers(self) -> int:
        return len(self.provider_ids)

    @property
    def n_doctors(self) -> int:
        return len(self.doctor_ids)

    def __repr__(self) -> str:
        return (f"ClaimsNetwork(patients={self.n_patients:,}, providers={self.n_providers:,}, "
                f"doctors={self.n_doctors:,}, claims={len(self.claim_ids):,}, "
                f"patient-provider edges={self.patient_provider.nnz:,})")

    def window(self, start_day: int | None = None, end_day: int | None = None) -> ClaimsNetwork:
        """Same ids, only claims whose admit day (days since 1970-01-01) is in ``[start_day, end_day)``."""
        if self.claim_day is None:
            raise ValueError("this network has no claim dates")
        keep = np.ones(len(self.claim_ids), dtype=bool)
        if start_day is not None:
            keep &= self.claim_day >= start_day
        if end_day is not None:
            keep &= self.claim_day < end_day
        return ClaimsNetwork(
            patient_ids=self.patient_ids, provider_ids=self.provider_ids, doctor_ids=self.doctor_ids,
            claim_ids=self.claim_ids[keep], provider_type=self.provider_type,
            claim_patient=self.claim_patient[keep], claim_provider=self.claim_provider[keep],
            claim_doctor=self.claim_doctor[keep], claim_money=self.claim_money[keep],
            claim_day=self.claim_day[keep], patient_region=self.patient_region, provider_region=self.provider_region,
        )

    # ------------------------------------------------------------------ matrices
    def _matrix(self, name: str, rows: np.ndarray, cols: np.ndarray, shape, weights=None) -> sp.csr_matrix:
        if name not in self._cache:
            keep = (rows >= 0) & (cols >= 0)
            data = np.ones(int(keep.sum()), dtype=np.int64) if weights is None else weights[keep]
            m = sp.coo_matrix((data, (rows[keep], cols[keep])), shape=shape).tocsr()
            m.sum_duplicates()
            m.sort_indices()
            self._cache[name] = m
        return self._cache[name]

    @property
    def patient_provider(self) -> sp.csr_matrix:
        """Patients x providers: number of claims."""
        return self._matrix("pp", self.claim_patient, self.claim_provider, (self.n_patients, self.n_providers))

    @property
    def patient_provider_money(self) -> sp.csr_matrix:
        """Patients x providers: fund paid (yuan)."""
        return self._matrix("pp$", self.claim_patient, self.claim_provider, (self.n_patients, self.n_providers),
                            self.claim_money)

    @property
    def patient_doctor(self) -> sp.csr_matrix:
        """Patients x doctors: number of claims."""
        return self._matrix("pd", self.claim_patient, self.claim_doctor, (self.n_patients, self.n_doctors))

    @property
    def patient_doctor_money(self) -> sp.csr_matrix:
        """Patients x doctors: fund paid (yuan)."""
        return self._matrix("pd$", self.claim_patient, self.claim_doctor, (self.n_patients, self.n_doctors),
                            self.claim_money)

    @property
    def doctor_provider(self) -> sp.csr_matrix:
        """Doctors x providers: number of claims."""
        return self._matrix("dp", self.claim_doctor, self.claim_provider, (self.n_doctors, self.n_providers))

    @property
    def doctor_provider_money(self) -> sp.csr_matrix:
        """Doctors x providers: fund paid (yuan)."""
        return self._matrix("dp$", self.claim_doctor, self.claim_provider, (self.n_doctors, self.n_providers),
                            self.claim_money)

    def adjacency(self, weight: str = "claims") -> sp.csr_matrix:
        """Symmetric adjacency over all nodes ``[patients | providers | doctors]`` (cached).

        ``weight``: "claims" (number of claims) or "money" (fund paid) on the
        patient-provider, patient-doctor and doctor-provider edges.
        """
        key = f"adj:{weight}"
        if key not in self._cache:
            if weight == "claims":
                parts = (self.patient_provider, self.patient_doctor, self.doctor_provider)
            elif weight == "money":
                parts = (self.patient_provider_money, self.patient_doctor_money, self.doctor_provider_money)
            else:
                raise ValueError(f"weight must be 'claims' or 'money', got {weight!r}")
            self._cache[key] = _stack(*parts, self.n_patients, self.n_providers, self.n_doctors)
        return self._cache[key]

    # ------------------------------------------------------------------ handy per-entity facts
    def provider_kind(self) -> pd.Series:
        """provider_type per provider id."""
        return pd.Series(self.provider_type, index=self.provider_ids, name="provider_type")

    def doctor_home(self) -> np.ndarray:
        """Code of the provider where each doctor made most claims (-1 if none)."""
        m = self.doctor_provider
        home = np.full(self.n_doctors, -1, dtype=np.int64)
        if m.nnz:
            has = np.diff(m.indptr) > 0
            home[has] = np.asarray(m[has].argmax(axis=1)).ravel()
        return home

    def money(self, entity: str) -> np.ndarray:
        """Fund paid per entity code ("provider", "patient" or "doctor")."""
        codes, n = {"provider": (self.claim_provider, self.n_providers), "patient": (self.claim_patient, self.n_patients),
                    "doctor": (self.claim_doctor, self.n_doctors)}[entity]
        keep = codes >= 0
        return np.bincount(codes[keep], weights=self.claim_money[keep], minlength=n)

    def claim_counts(self, entity: str) -> np.ndarray:
        """Number of claims per entity code."""
        codes, n = {"provider": (self.claim_provider, self.n_providers), "patient": (self.claim_patient, self.n_patients),
                    "doctor": (self.claim_doctor, self.n_doctors)}[entity]
        return np.bincount(codes[codes >= 0], minlength=n)


def as_network(batch_or_network) -> ClaimsNetwork:
    """A :class:`ClaimsNetwork` from a network (returned as is) or a Batch."""
    if isinstance(batch_or_network, ClaimsNetwork):
        return batch_or_network
    if hasattr(batch_or_network, "claims") and hasattr(batch_or_network, "providers"):
        return ClaimsNetwork.from_batch(batch_or_network)
    raise TypeError(f"expected a ClaimsNetwork or a Batch, got {type(batch_or_network).__name__}")


# ---------------------------------------------------------------------------- ego networks
def ego_network(batch_or_network, provider_id: str, radius: int = 2, max_nodes: int = 150,
                suspicious: Iterable[str] | pd.Series | None = None) -> nx.Graph:
    """The neighbourhood of one provider, as a networkx Graph ready to draw.

    Nodes are patients, doctors and providers within ``radius`` hops of the provider in
    the multipartite claims network (patient-provider, patient-doctor and
    doctor-provider edges). When a node has more neighbours than room is left, the
    neighbours with the most money are kept, so that at most ``max_nodes`` nodes remain.

    Parameters
    ----------
    batch_or_network : Batch or ClaimsNetwork
    provider_id : str
    radius : int, default=2
        Hops from the provider (2 = its patients and doctors, and their other providers).
    max_nodes : int, default=150
    suspicious : iterable of ids, or Series of bools/scores indexed by id, optional
        Sets the node attribute ``suspicious`` (True for listed ids, or where the
        Series is truthy / positive).

    Returns
    -------
    networkx.Graph
        Node attributes: ``kind`` ("patient", "doctor", "hospital", "clinic", "pharmacy"),
        ``label`` (the id), ``money`` (fund paid in the whole network), ``claims``,
        ``hops`` (distance from the provider) and ``suspicious``. Edge attributes:
        ``claims`` and ``money``. Node keys are the ids (prefixed with the kind,
        as ``"doctor:ID"``, only if an id clashes with another kind's id).

    Examples
    --------
    >>> import pandas as pd
    >>> claims = pd.DataFrame({"claim_id": ["c1", "c2", "c3"], "patient_id": ["A", "A", "B"],
    ...                        "provider_id": ["C1", "R1", "C1"], "doctor_id": ["D1", None, "D1"],
    ...                        "fund_paid": [100.0, 20.0, 50.0]})
    >>> providers = pd.DataFrame({"provider_id": ["C1", "R1"], "provider_type": ["clinic", "pharmacy"]})
    >>> g = ego_network(ClaimsNetwork.from_frames(claims, providers), "C1", suspicious=["R1"])
    >>> sorted(g.nodes(data="kind"))
    [('A', 'patient'), ('B', 'patient'), ('C1', 'clinic'), ('D1', 'doctor'), ('R1', 'pharmacy')]
    >>> g.edges["A", "C1"], g.nodes["R1"]["suspicious"]
    ({'claims': 1, 'money': 100.0}, True)
    """
    net = as_network(batch_or_network)
    loc = net.provider_ids.get_indexer([str(provider_id)])[0]
    if loc < 0:
        raise KeyError(f"provider {provider_id!r} is not in the network")
    n_pat, n_prov = net.n_patients, net.n_providers
    # one symmetric adjacency over all nodes: [patients | providers | doctors]
    off_prov, off_doc = n_pat, n_pat + n_prov
    n = n_pat + n_prov + net.n_doctors
    counts, money = net.adjacency("claims"), net.adjacency("money")
    start = off_prov + loc
    hop = np.full(n, -1, dtype=np.int64)
    hop[start] = 0
    frontier = np.array([start])
    for h in range(1, radius + 1):
        reached = np.unique(money[frontier].indices)
        reached = reached[hop[reached] < 0]
        hop[reached] = h
        frontier = reached
    inside = np.flatnonzero(hop >= 0)
    if len(inside) > max_nodes:
        # keep the strongest ties: half the room for providers and doctors (by money tying
        # them to nodes nearer the centre), the rest for the patients tying them together
        sub = money[inside][:, inside].tocoo()
        nearer = hop[inside][sub.col] < hop[inside][sub.row]
        tie = np.bincount(sub.row[nearer], weights=sub.data[nearer], minlength=len(inside))
        is_patient = inside < off_prov
        others = np.flatnonzero(~is_patient & (inside != start))
        keep = [np.flatnonzero(inside == start)]
        room = max(max_nodes // 2 - 1, 0)
        keep.append(others[np.lexsort((inside[others], -tie[others]))][:room])
        kept = np.concatenate(keep)
        pats = np.flatnonzero(is_patient)
        to_kept = np.asarray(money[inside[pats]][:, inside[kept]].sum(axis=1)).ravel()
        room = max_nodes - len(kept)
        kept = np.concatenate([kept, pats[np.lexsort((inside[pats], -to_kept))][:room]])
        inside = np.sort(inside[kept])
    hops = {int(v): int(hop[v]) for v in inside}
    nodes = np.array(sorted(hops), dtype=np.int64)
    flags = _suspicious_set(suspicious)
    node_money = np.concatenate([net.money("patient"), net.money("provider"), net.money("doctor")])
    node_claims = np.concatenate([net.claim_counts("patient"), net.claim_counts("provider"), net.claim_counts("doctor")])
    g = nx.Graph(center=str(provider_id))
    keys = {}
    for v in nodes:
        if v < off_prov:
            kind, label = "patient", net.patient_ids[v]
        elif v < off_doc:
            kind, label = str(net.provider_type[v - off_prov]), net.provider_ids[v - off_prov]
        else:
            kind, label = "doctor", net.doctor_ids[v - off_doc]
        key = label if label not in g else f"{kind}:{label}"
        keys[v] = key
        g.add_node(key, kind=kind, label=label, money=round(float(node_money[v]), 2), claims=int(node_claims[v]),
                   hops=hops[int(v)], suspicious=label in flags)
    sub_c = counts[nodes][:, nodes].tocoo()
    sub_m = money[nodes][:, nodes].tocsr()
    for i, j, c in zip(sub_c.row, sub_c.col, sub_c.data):
        if i < j:
            g.add_edge(keys[nodes[i]], keys[nodes[j]], claims=int(c), money=round(float(sub_m[i, j]), 2))
    return g


def _stack(pp, pd_, dp, n_pat, n_prov, n_doc) -> sp.csr_matrix:
    """Symmetric block adjacency [patients | providers | doctors] from the three relations."""
    z = None
    blocks = [[z, pp, pd_], [pp.T, z, dp.T], [pd_.T, dp, z]]
    shapes = [n_pat, n_prov, n_doc]
    for r in range(3):
        for c in range(3):
            if blocks[r][c] is None:
                blocks[r][c] = sp.csr_matrix((shapes[r], shapes[c]))
    return sp.bmat(blocks, format="csr")


def _suspicious_set(suspicious) -> set:
    if suspicious is None:
        return set()
    if isinstance(suspicious, pd.Series):
        s = suspicious
        flagged = s[s.astype(bool)] if s.dtype == bool else s[s > 0]
        return {str(i) for i in flagged.index}
    return {str(i) for i in suspicious}
