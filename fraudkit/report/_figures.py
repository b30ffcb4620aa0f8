"""The report's plots as plotly figures: claim costs against peers, and a provider's network.

Every figure uses SVG traces only (no WebGL: the report must render on any office PC and
in headless browsers) and keeps its point count bounded so that a report with dozens of
cards stays a few MB. Text that came from input files is HTML-escaped before it goes into
a figure: plotly renders a small subset of HTML in labels and hover texts.
"""

from __future__ import annotations

from html import escape as _html_escape

import networkx as nx
import numpy as np
import pandas as pd
import plotly.graph_objects as go

#: Colours shared with the CSS (report.css).
FLAGGED = "#c0392b"
EVIDENCE = "#7b1d12"
NEUTRAL = "#9aa5b1"
ACCENT = "#1f4e79"
BLOCK = "#e67e22"

#: Node style per kind in the network plot: colour, marker symbol, legend name.
NODE_STYLE = {
    "patient": ("#7f8c8d", "circle", "patients"),
    "doctor": ("#16a085", "diamond", "doctors"),
    "hospital": ("#1f4e79", "square", "hospitals"),
    "clinic": ("#2e86c1", "square", "clinics"),
    "pharmacy": ("#8e44ad", "triangle-up", "pharmacies"),
}

#: At most this many unflagged claims are drawn per provider (a seeded sample), and this many flagged.
MAX_UNFLAGGED_POINTS = 400
MAX_FLAGGED_POINTS = 300

_FONT = dict(family="system-ui, -apple-system, 'Segoe UI', Roboto, 'Noto Sans', 'Noto Sans CJK SC', 'Microsoft YaHei', sans-serif",
             size=12, color="#1c2833")


#: Check every figure against plotly's schema (slow: most of the report's time). The tests
#: switch it on; a report built without it is the same figure, only not re-checked.
VALIDATE_FIGURES = False


def _trace(kind: str, **properties) -> dict:
    return {"type": kind, **properties}


def _figure(traces: list[dict], layout: dict) -> go.Figure:
    return go.Figure(data=traces, layout=layout, _validate=VALIDATE_FIGURES)


def escape(text: str) -> str:
    """Escape text for a plotly label: plotly decodes &lt; &gt; &amp; but not &quot;."""
    return _html_escape(str(text), quote=False)


def _layout(**kwargs) -> dict:
    base = dict(template="none", font=_FONT, margin=dict(l=60, r=20, t=36, b=50), height=380, paper_bgcolor="white",
                plot_bgcolor="white", hoverlabel=dict(font=dict(size=12)),
                legend=dict(orientation="h", yanchor="bottom", y=1.0, x=0, bgcolor="rgba(0,0,0,0)"))
    base.update(kwargs)
    return base


def _money(x: float) -> str:
    return f"¥{x:,.0f}" if np.isfinite(x) else "–"


def money_ticks(lo: float, hi: float) -> dict:
    """Tick values and labels for a log money axis: 1-2-5 steps, as ¥200, ¥5k, ¥1.2M.

    Examples
    --------
    >>> money_ticks(150, 1200)["ticktext"]
    ['¥200', '¥500', '¥1k']
    """
    lo, hi = max(float(lo), 1e-2), max(float(hi), float(lo) * 1.01)
    values = [m * 10.0 ** e for e in range(int(np.floor(np.log10(lo))), int(np.ceil(np.log10(hi))) + 1) for m in (1, 2, 5)]
    values = [v for v in values if lo <= v <= hi]
    if len(values) > 9:
        values = [v for v in values if str(v)[0] == "1"]

    def label(v: float) -> str:
        for div, unit in ((1e6, "M"), (1e3, "k")):
            if v >= div:
                return f"¥{v / div:g}{unit}"
        return f"¥{v:g}"

    return {"tickvals": values, "ticktext": [label(v) for v in values]}


def sample_claims(claims: pd.DataFrame, seed: int = 0, scale: float = 1.0) -> tuple[pd.DataFrame, int]:
    """The claims to draw: the most suspicious flagged ones and a seeded sample of the rest.

    Returns the rows to draw and how many claims were left out. ``scale`` shrinks the
    budgets (:data:`MAX_FLAGGED_POINTS`, :data:`MAX_UNFLAGGED_POINTS`; 50 at least).
    """
    flagged = claims[claims["flagged"]].sort_values(["suspicion", "claim_id"], ascending=[False, True])
    max_flagged, max_rest = (max(50, int(n * scale)) for n in (MAX_FLAGGED_POINTS, MAX_UNFLAGGED_POINTS))
    flagged = flagged.head(max_flagged)
    rest = claims[~claims["flagged"]]
    if len(rest) > max_rest:
        keep = np.sort(np.random.default_rng(seed).choice(len(rest), max_rest, replace=False))
        rest = rest.iloc[keep]
    drawn = pd.concat([rest, flagged])
    return drawn, len(claims) - len(drawn)


#: Hover of a claim point; the per-point parts travel as customdata (smaller than one HTML string per point).
CLAIM_HOVER = ("<b>%{customdata[0]}</b> · %{customdata[1]}<br>%{customdata[2]}<br>total ¥%{y:,.0f}%{customdata[3]}"
               "<br>suspicion %{customdata[4]}<extra></extra>")


def _claim_customdata(rows: pd.DataFrame, pseudonym) -> list[list[str]]:
    """Per claim: id, patient pseudonym, care type and diagnosis, ratio to peers, suspicion (escaped)."""
    peer = rows["peer_median_total"] if "peer_median_total" in rows else pd.Series(np.nan, index=rows.index)
    out = []
    for cid, pid, care, diag, total, med, susp in zip(rows["claim_id"], rows["patient_id"], rows["care_type"],
                                                      rows["diagnosis"], rows["total_amount"], peer, rows["suspicion"]):
        diag = "" if pd.isna(diag) else f" {diag}"
        ratio = f" = {float(total) / float(med):.1f} × peer median {_money(float(med))}" if pd.notna(med) and med > 0 else ""
        out.append([escape(cid), escape(pseudonym(pid)), escape(f"{care}{diag}"), ratio, f"{float(susp):.3f}"])
    return out


def cost_figure(claims: pd.DataFrame, pseudonym, evidence: set[str] | None = None,
                peer_boxes: pd.DataFrame | None = None, seed: int = 0, scale: float = 1.0) -> tuple[go.Figure, str]:
    """One provider's claim costs against its peers.

    With peer medians (``peer_median_total``, the median cost of the claim's DRG/DIP group
    and tier), a log-log scatter of each claim's total against its peer median: claims far
    above the diagonal cost more than their peers. Without them, one box per care type of
    the peers' claims (``peer_boxes``: quartiles per care type, from :func:`peer_quartiles`)
    beside this provider's claims.

    Parameters
    ----------
    claims : DataFrame
        The provider's scored claims (``claim_id, patient_id, care_type, diagnosis,
        total_amount, suspicion, flagged`` and optionally ``peer_median_total``).
    pseudonym : callable
        Patient id -> pseudonym.
    evidence : set of str, optional
        Claim ids listed as evidence (drawn with a dark outline).
    scale : float, default=1
        Share of the usual point budget to draw (a report with many cards draws fewer).

    Returns
    -------
    (Figure, caption)
    """
    evidence = evidence or set()
    drawn, left_out = sample_claims(claims, seed, scale)
    has_peer = "peer_median_total" in drawn and drawn["peer_median_total"].notna().any()
    n_flag = int(claims["flagged"].sum())
    caption = f"{len(claims):,} claims, {n_flag:,} flagged (red)"
    if left_out:
        caption += f"; {len(drawn):,} drawn (all the most suspicious flagged claims, a sample of the rest)"
    traces: list[dict] = []
    if has_peer:
        drawn = drawn[drawn["peer_median_total"].notna() & (drawn["peer_median_total"] > 0) & (drawn["total_amount"] > 0)]
        lo = float(min(drawn["peer_median_total"].min(), drawn["total_amount"].min())) * 0.8 if len(drawn) else 1.0
        hi = float(max(drawn["peer_median_total"].max(), drawn["total_amount"].max())) * 1.25 if len(drawn) else 10.0
        for factor, name, dash in ((1, "= peer median", "solid"), (2, "2 × peer median", "dash")):
            traces.append(_trace("scatter", x=[lo, hi / factor], y=[lo * factor, hi], mode="lines", name=name,
                                     line=dict(color="#5d6d7e", width=1, dash=dash), hoverinfo="skip"))
        groups = (("unflagged claims", ~drawn["flagged"], NEUTRAL, 6, 0.55),
                  ("flagged claims", drawn["flagged"], FLAGGED, 9, 0.9))
        for name, mask, colour, size, opacity in groups:
            rows = drawn[mask.to_numpy()]
            if not len(rows):
                continue
            is_evidence = rows["claim_id"].astype(str).isin(evidence).to_numpy()
            traces.append(_trace("scatter", 
                x=rows["peer_median_total"].to_numpy(float), y=rows["total_amount"].to_numpy(float),
                mode="markers", name=name, customdata=_claim_customdata(rows, pseudonym), hovertemplate=CLAIM_HOVER,
                marker=dict(color=colour, size=size, opacity=opacity,
                            line=dict(color=np.where(is_evidence, EVIDENCE, "white").tolist(),
                                      width=np.where(is_evidence, 2, 0.5).tolist()))))
        ticks = money_ticks(lo, hi)
        fig = _figure(traces, _layout(
            xaxis=dict(type="log", title="peer median cost of the claim's group", gridcolor="#eaecee", range=np.log10([lo, hi]).tolist(), **ticks),
            yaxis=dict(type="log", title="claim total", gridcolor="#eaecee", range=np.log10([lo, hi]).tolist(), **ticks)))
        caption += ". Above the solid line a claim cost more than the median of its peers (same DRG/DIP group and tier)."
        return fig, caption

    # No peer medians: compare distributions per care type with the same kind of providers.
    # Boxes are precomputed (5th, 25th, 50th, 75th, 95th percentiles) from every claim, the
    # provider's too; only the points are a sample.
    order = sorted(claims["care_type"].astype(str).unique())
    own = _percentiles(claims["total_amount"].astype(float).groupby(claims["care_type"].astype(str).to_numpy()))
    boxes = [("peers (same provider type)", peer_boxes.reindex(order).dropna(how="all") if peer_boxes is not None and len(peer_boxes) else None,
              NEUTRAL, "rgba(154,165,177,0.25)"),
             ("this provider (all claims)", own.reindex(order).dropna(how="all"), ACCENT, "rgba(31,78,121,0.15)")]
    for name, stats, colour, fill in boxes:
        if stats is None or not len(stats):
            continue
        traces.append(_trace("box", x=list(stats.index), q1=stats["q1"].tolist(), median=stats["median"].tolist(),
                             q3=stats["q3"].tolist(), lowerfence=stats["low"].tolist(), upperfence=stats["high"].tolist(),
                             name=name, offsetgroup=name, marker=dict(color=colour), line=dict(color=colour, width=1),
                             fillcolor=fill, hoverinfo="y"))
    points = "its claims" + (" (a sample)" if left_out else "")
    for name, mask, colour in ((points, ~drawn["flagged"].to_numpy(), ACCENT), ("flagged claims", drawn["flagged"].to_numpy(), FLAGGED)):
        rows = drawn[mask]
        if not len(rows):
            continue
        # a box trace only for its jittered points: same slot for both, box itself invisible
        traces.append(_trace("box", x=rows["care_type"].astype(str).tolist(), y=rows["total_amount"].to_numpy(float),
                             name=name, offsetgroup="points", boxpoints="all", jitter=0.6, pointpos=0, hoveron="points",
                             marker=dict(color=colour, size=6 if colour == ACCENT else 8, opacity=0.6 if colour == ACCENT else 0.9),
                             line=dict(color="rgba(0,0,0,0)", width=0), fillcolor="rgba(0,0,0,0)",
                             customdata=_claim_customdata(rows, pseudonym), hovertemplate=CLAIM_HOVER))
    fig = _figure(traces, _layout(boxmode="group", xaxis=dict(title="care type", categoryorder="array", categoryarray=order),
                                yaxis=dict(type="log", title="claim total", gridcolor="#eaecee",
                                           **money_ticks(float(claims["total_amount"].clip(lower=1).min()) * 0.8,
                                                         float(claims["total_amount"].max()) * 1.25))))
    caption += (". No peer medians in this run: per care type, the claims of all providers of the same type, this "
                "provider's claims, and its claims one by one (boxes: 5th, 25th, 50th, 75th, 95th percentiles).")
    return fig, caption


def peer_quartiles(claims: pd.DataFrame, provider_type: pd.Series) -> dict[str, pd.DataFrame]:
    """Quartiles and 5th/95th percentiles of claim totals per provider type and care type.

    ``provider_type`` maps provider_id -> type. Returns ``{type: DataFrame indexed by
    care_type with q1, median, q3, low, high}``.
    """
    kind = claims["provider_id"].astype(str).map(provider_type.astype(str))
    amount = claims["total_amount"].astype(float)
    q = _percentiles(amount.groupby([kind.to_numpy(), claims["care_type"].astype(str).to_numpy()]))
    return {t: frame.droplevel(0) for t, frame in q.groupby(level=0)}


def _percentiles(grouped) -> pd.DataFrame:
    if grouped.ngroups == 0:
        return pd.DataFrame(columns=["low", "q1", "median", "q3", "high"], dtype=float)
    q = grouped.quantile([0.05, 0.25, 0.5, 0.75, 0.95]).unstack()
    q.columns = ["low", "q1", "median", "q3", "high"]
    return q


def _flatten_members(members) -> set[str]:
    """Ids of a dense block's members, whether a list of ids or a mapping kind -> ids."""
    if members is None:
        return set()
    if isinstance(members, dict):
        out: set[str] = set()
        for value in members.values():
            out |= _flatten_members(value)
        return out
    if isinstance(members, (str, bytes)):
        return {str(members)}
    out = set()
    for m in members:
        if isinstance(m, dict):
            out |= _flatten_members(m.get("id", m.get("members")))
        else:
            out.add(str(m))
    return out


def block_members(block) -> set[str]:
    """Ids of a dense block's members: its ``patients``, ``providers`` and ``doctors`` lists
    (as :class:`fraudkit.graph.DenseBlockDetector` writes them) or a ``members`` list."""
    get = block.get if isinstance(block, dict) else (lambda key, default=None: getattr(block, key, default))
    members: set[str] = set()
    for key in ("members", "patients", "providers", "doctors"):
        members |= _flatten_members(get(key, None))
    return members


def blocks_of(blocks: list, provider_id: str) -> list[tuple[int, dict, set[str]]]:
    """The dense blocks (number, block, member ids) that hold ``provider_id``."""
    found = []
    for number, block in enumerate(blocks or [], start=1):
        members = block_members(block)
        if str(provider_id) in members:
            found.append((int(block.get("block", number)) if isinstance(block, dict) else number, block, members))
    return found


#: Providers named on the network plot (besides the centre).
MAX_NAMED_PROVIDERS = 8
NODE_HOVER = "<b>%{customdata[0]}</b> (%{customdata[1]})<br>fund paid %{customdata[2]} · %{customdata[3]} claims%{customdata[4]}<extra></extra>"


def network_figure(graph: nx.Graph, center: str, pseudonym, highlight: set[str] | None = None,
                   seed: int = 0) -> tuple[go.Figure, str]:
    """A provider's ego network, drawn with a seeded spring layout (the same picture every run).

    Parameters
    ----------
    graph : networkx.Graph
        From :func:`fraudkit.graph.ego_network`: node attributes ``kind``, ``label``,
        ``money``; edge attributes ``claims``, ``money``.
    center : str
        The provider id at the centre.
    pseudonym : callable
        Patient id -> pseudonym (patient labels are never drawn raw).
    highlight : set of str, optional
        Ids of the members of the provider's dense block(s): ringed in orange, their
        edges drawn thick.

    Returns
    -------
    (Figure, caption)
    """
    highlight = highlight or set()
    if graph.number_of_nodes() == 0:
        return _figure([], _layout()), "No network: the provider has no claims."
    labels = {n: str(d.get("label", n)) for n, d in graph.nodes(data=True)}
    centre_node = next((n for n in graph if labels[n] == str(center) and graph.nodes[n].get("kind") != "patient"), None)
    if centre_node is not None:
        # Trimming a large neighbourhood can strand a few nodes; drawn, they would squash the rest.
        graph = graph.subgraph(nx.node_connected_component(graph, centre_node))
    k = 2.2 / np.sqrt(max(graph.number_of_nodes(), 1))
    pos = nx.spring_layout(graph, seed=seed, k=k, iterations=60, weight=None)
    origin = np.asarray(pos[centre_node]) if centre_node is not None else np.zeros(2)
    # the provider in the middle; 3 decimals are plenty on screen and keep the file small
    pos = {n: np.round(np.asarray(xy) - origin, 3).tolist() for n, xy in pos.items()}
    in_block = {n for n in graph if labels[n] in highlight}

    traces: list[dict] = []
    for name, inside, colour, width in (("edges", False, "#bfc9ca", 0.6), ("dense-block edges", True, BLOCK, 1.8)):
        xs: list = []
        ys: list = []
        for u, v in graph.edges():
            if (u in in_block and v in in_block) is inside:
                xs += [pos[u][0], pos[v][0], None]
                ys += [pos[u][1], pos[v][1], None]
        if xs:
            traces.append(_trace("scatter", x=xs, y=ys, mode="lines", line=dict(color=colour, width=width),
                                     hoverinfo="skip", name=name, showlegend=inside))

    # Name only the providers with the most money on the plot (the others on hover), so labels stay legible.
    providers = [n for n, d in graph.nodes(data=True) if d.get("kind") not in ("patient", "doctor") and n != centre_node]
    named = set(sorted(providers, key=lambda n: (-float(graph.nodes[n].get("money", 0) or 0), labels[n]))[:MAX_NAMED_PROVIDERS])
    money = np.array([float(d.get("money", 0.0) or 0.0) for _, d in graph.nodes(data=True)])
    top_money = max(float(money.max()), 1.0) if len(money) else 1.0
    for kind, (colour, symbol, legend) in NODE_STYLE.items():
        nodes = [n for n, d in graph.nodes(data=True) if d.get("kind") == kind and n != centre_node]
        nodes.sort(key=lambda n: n in in_block)  # the legend draws a trace like its first point: a plain one
        if not nodes:
            continue
        shown, data = [], []
        for n in nodes:
            d = graph.nodes[n]
            name = pseudonym(labels[n]) if kind == "patient" else labels[n]
            shown.append(escape(name) if n in named else "")
            data.append([escape(name), kind, _money(float(d.get("money", 0) or 0)), f"{int(d.get('claims', 0) or 0):,}",
                         "<br><b>dense-block member</b>" if n in in_block else ""])
        sizes = [7 + 16 * np.sqrt(float(graph.nodes[n].get("money", 0) or 0) / top_money) for n in nodes]
        traces.append(_trace("scatter", 
            x=[pos[n][0] for n in nodes], y=[pos[n][1] for n in nodes], mode="markers" if kind in ("patient", "doctor") else "markers+text",
            name=legend, text=shown, textposition="top center", textfont=dict(size=10, color="#34495e"),
            customdata=data, hovertemplate=NODE_HOVER,
            marker=dict(color=colour, symbol=symbol, size=sizes, opacity=0.9,
                        line=dict(color=[BLOCK if n in in_block else "white" for n in nodes],
                                  width=[3 if n in in_block else 0.8 for n in nodes]))))
    if in_block:
        traces.append(_trace("scatter", x=[None], y=[None], mode="markers", name="dense-block member", hoverinfo="skip",
                             marker=dict(color="white", size=11, line=dict(color=BLOCK, width=3))))
    if centre_node is not None:
        d = graph.nodes[centre_node]
        traces.append(_trace("scatter", 
            x=[pos[centre_node][0]], y=[pos[centre_node][1]], mode="markers+text", name="this provider", text=[f"<b>{escape(str(center))}</b>"],
            textposition="bottom center", hovertemplate=NODE_HOVER,
            customdata=[[escape(str(center)), escape(str(d.get("kind", ""))), _money(float(d.get("money", 0) or 0)),
                         f"{int(d.get('claims', 0) or 0):,}", "<br><b>dense-block member</b>" if centre_node in in_block else ""]],
            marker=dict(color="#17202a", symbol="star", size=22, line=dict(color=BLOCK if centre_node in in_block else "white", width=3))))
    hidden = dict(visible=False, showgrid=False, zeroline=False)
    fig = _figure(traces, _layout(height=420, xaxis=hidden, yaxis=hidden, margin=dict(l=10, r=10, t=36, b=10)))
    kinds = pd.Series([d.get("kind") for _, d in graph.nodes(data=True)]).value_counts()
    parts = [f"{int(kinds[k]):,} {NODE_STYLE[k][2] if kinds[k] != 1 else k}" for k in NODE_STYLE if k in kinds]
    caption = "Neighbourhood within two hops: " + ", ".join(parts) + ". Marker size = fund paid."
    if in_block:
        caption += f" Orange: the {len(in_block):,} members of its dense block shown here."
    return fig, caption
