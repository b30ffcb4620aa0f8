"""Assemble the self-contained HTML report from a :class:`fraudkit.pipeline.ScoreResult`."""

from __future__ import annotations

import json
from html import escape
from importlib import resources
from pathlib import Path

import numpy as np
import pandas as pd
import plotly.io as pio
from plotly.offline import get_plotlyjs

from fraudkit import __version__
from fraudkit.schemes import SCHEMES

from ._figures import blocks_of, cost_figure, network_figure, peer_quartiles
from ._pseudonym import Pseudonymiser

#: Providers after the top k listed (greyed) in the ranking: the next in line if one falls out.
RESERVE_ROWS = 5
#: Reasons shown per provider card.
CARD_REASONS = 6
#: Ego networks are cut at this many nodes so that they stay legible.
NETWORK_NODES = 120
#: The plots of the first cards are drawn when the page opens, the others when scrolled near.
EAGER_CARDS = 3
#: Up to this many cards get full-size plots; beyond it, points and network nodes shrink in
#: proportion (to a floor), so that a report with 100 cards stays under ~8 MB.
FULL_SIZE_CARDS = 25

DETECTOR_NAMES = {
    "claim_features": "claim outliers",
    "claim_outliers": "flagged claims",
    "patient_features": "patient outliers",
    "patient_outliers": "patient outliers",
    "provider_features": "provider profile",
    "provider_signals": "strongest signal",
    "claim_signals": "strongest claim signal",
    "dense_blocks": "dense block",
    "rings": "collusion ring",
    "egonet": "network shape",
    "propagation": "linked to known fraud",
}

_PLOT_CONFIG = {"displaylogo": False, "responsive": True,
                "modeBarButtonsToRemove": ["select2d", "lasso2d", "autoScale2d", "toggleSpikelines"]}

# Draws the figures: those near the top at once, the others as they scroll into view (a report
# with many cards opens fast), and every one before printing. Errors go to the console.
_BOOT = """
(function () {
  var config = %s;
  var nodes = Array.prototype.slice.call(document.querySelectorAll('script[type="application/json"][data-figure]'));
  function draw(node) {
    if (node.drawn) return;
    node.drawn = true;
    var target = document.getElementById(node.getAttribute('data-figure'));
    try {
      var fig = JSON.parse(node.textContent);
      Plotly.newPlot(target, fig.data, fig.layout, config);
    } catch (err) {
      console.error('fraudkit report: figure ' + target.id + ' failed: ' + err);
      target.textContent = 'This plot could not be drawn.';
    }
  }
  function drawAll() { nodes.forEach(draw); }
  window.addEventListener('beforeprint', drawAll);
  if (window.matchMedia) {  // browsers without beforeprint, and print emulation
    var print = window.matchMedia('print');
    var onPrint = function (m) { if (m.matches) drawAll(); };
    if (print.addEventListener) print.addEventListener('change', onPrint); else if (print.addListener) print.addListener(onPrint);
  }
  if (!('IntersectionObserver' in window)) { drawAll(); return; }
  var byTarget = {};
  var seen = new IntersectionObserver(function (entries) {
    entries.forEach(function (entry) {
      if (entry.isIntersecting) { seen.unobserve(entry.target); draw(byTarget[entry.target.id]); }
    });
  }, {rootMargin: '1000px 0px'});
  nodes.forEach(function (node, i) {
    var target = document.getElementById(node.getAttribute('data-figure'));
    byTarget[target.id] = node;
    if (i < %d) { draw(node); } else { seen.observe(target); }
  });
})();
""" % (json.dumps(_PLOT_CONFIG), 2 * EAGER_CARDS)


def _e(value) -> str:
    """HTML-escaped text of a cell ('' for missing)."""
    if value is None or (not isinstance(value, (list, tuple, set, dict, np.ndarray)) and pd.isna(value)):
        return ""
    return escape(str(value), quote=True)


def _money(x) -> str:
    return f"¥{float(x):,.0f}" if pd.notna(x) else ""


def _suspicion(x) -> str:
    return f"{min(max(0.0, float(x)), 1.0):.3f}" if pd.notna(x) else ""  # max(0.0, -0.0) is 0.0, not -0.0


def _tier(tier) -> str:
    """' tier 3' for graded institutions; pharmacies and ungraded ones (tier 0) show none."""
    return f" tier {int(tier)}" if pd.notna(tier) and int(tier) > 0 else ""


def _shorten(text: str, limit: int = 150) -> str:
    """The first ``limit`` characters, cut at a word ('…' marks the cut; the card has the full text)."""
    text = " ".join(str(text).split())
    return text if len(text) <= limit else text[:limit].rsplit(" ", 1)[0] + " …"


def _date(x) -> str:
    return pd.Timestamp(x).strftime("%Y-%m-%d") if pd.notna(x) else ""


def _scheme_chips(schemes) -> str:
    names = [s for s in str(schemes or "").split(";") if s.strip()] if pd.notna(schemes) else []
    return "".join(f'<span class="chip" title="{_e(SCHEMES[n].signal if n in SCHEMES else n)}">'
                   f'{_e(SCHEMES[n].title if n in SCHEMES else n.replace("_", " "))}</span>' for n in names)


def _figure_json(fig) -> str:
    text = pio.to_json(fig, validate=False, pretty=False)
    # Inside <script>: no "</script>", no HTML comment openers (plotly already escapes most).
    text = text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")
    return text.replace("\\u002f", "/")  # safe once "<" is escaped, and shorter


class _Report:
    """State of one report while it is written: pseudonyms, figures, lookups."""

    def __init__(self, result, batch, salt, max_cards):
        self.result = result
        self.batch = batch
        self.summary = dict(result.summary or {})
        patient_ids = batch.patients["patient_id"] if batch is not None else result.patients.get("patient_id", [])
        self.pseudonym = Pseudonymiser(salt, patient_ids=pd.Series(patient_ids, dtype=object).astype(str))
        providers = result.providers
        k = int(self.summary.get("inspections", int(providers["inspect"].sum()) if "inspect" in providers else 20))
        self.k = k
        if "inspect" in providers:
            self.top = providers[providers["inspect"].astype(bool)].head(k)
        else:
            self.top = providers.head(k)
        self.reserve = providers.iloc[len(self.top): len(self.top) + RESERVE_ROWS]
        n_cards = len(self.top) if max_cards is None else max(0, min(int(max_cards), len(self.top)))
        self.cards = self.top.head(n_cards)
        self.scale = min(1.0, FULL_SIZE_CARDS / max(len(self.cards), 1))
        self.card_ids = {str(p): f"card-{int(r)}" for p, r in zip(self.cards["provider_id"], self.cards["rank"])}
        self.figures: list[tuple[str, str]] = []  # (div id, figure JSON)
        self._network = None

    # ------------------------------------------------------------------ pieces
    def text(self, value) -> str:
        """Escaped free text (reasons, schemes) with any raw patient id replaced by its pseudonym."""
        return _e(self.pseudonym.scrub(str(value))) if pd.notna(value) else ""

    def figure(self, div_id: str, fig, caption: str) -> str:
        self.figures.append((div_id, _figure_json(fig)))
        return f'<figure><div class="plot" id="{div_id}"></div><figcaption>{_e(caption)}</figcaption></figure>'

    def header(self) -> str:
        s = self.summary
        batch_name = s.get("batch") or getattr(self.batch, "source", "") or ""
        claims = s.get("claims", len(self.result.claims))
        money_top = float(self.top["money_at_stake"].sum())
        fund_total = s.get("fund_paid_total", float(self.result.claims["fund_paid"].sum()))
        scope = []
        if s.get("region"):
            scope.append(f"region {_e(s['region'])}")
        if s.get("provider_type"):
            scope.append(f"{_e(s['provider_type'])}s only")
        stats = [
            ("claims", f"{int(claims):,}"), ("patients", f"{int(s.get('patients', len(self.result.patients))):,}"),
            ("providers", f"{int(s.get('providers', len(self.result.providers))):,}"),
            ("flagged claims", f"{int(s.get('flagged_claims', int(self.result.claims['flagged'].sum()))):,}"),
            ("fund paid in batch", _money(fund_total)),
        ]
        cells = "".join(f'<div class="stat"><b>{v}</b>{_e(label)}</div>' for label, v in stats)
        cells += (f'<div class="stat key"><b>{self.k}</b>inspections (k)</div>'
                  f'<div class="stat key"><b>{_money(money_top)}</b>money at stake in the top {len(self.top)}</div>')
        return (f'<header class="top"><div class="inner"><h1>Flight inspection report</h1>'
                f'<div class="muted">Batch <b>{_e(batch_name)}</b>'
                f'{" · " + ", ".join(scope) if scope else ""} · fraudkit {_e(s.get("fraudkit_version", __version__))}</div>'
                f'<div class="stats">{cells}</div></div></header>')

    def ranking(self) -> str:
        rows = []
        top_money = max(float(self.top["money_at_stake"].max()) if len(self.top) else 0.0, 1.0)
        for is_reserve, frame in ((False, self.top), (True, self.reserve)):
            for i, row in enumerate(frame.itertuples(index=False)):
                pid = str(row.provider_id)
                anchor = self.card_ids.get(pid)
                name = f'<a href="#{anchor}">{_e(pid)}</a>' if anchor else _e(pid)
                tier = _tier(row.tier)
                first_reason = str(row.reasons).split(" | ")[0] if pd.notna(row.reasons) else ""
                share = min(float(row.money_at_stake) / top_money, 1.0) * 100
                share = max(share, 2.0) if share > 0 else 0.0  # a sliver stays visible; nothing shows nothing
                cls = ' class="reserve cut"' if is_reserve and i == 0 else (' class="reserve"' if is_reserve else "")
                rows.append(
                    f'<tr{cls}><td class="num rank">{int(row.rank)}</td><td>{name}<div class="small muted">'
                    f'{_e(row.provider_type)}{tier} · {_e(row.region)}</div></td>'
                    f'<td class="num">{_suspicion(row.suspicion)}</td>'
                    f'<td class="num bar">{_money(row.money_at_stake)}<span class="fill" style="width:{share:.0f}%"></span></td>'
                    f'<td class="num">{int(row.flagged_claims):,} / {int(row.claims):,}</td>'
                    f'<td class="schemes">{_scheme_chips(row.schemes)}</td>'
                    f'<td class="reason-cell" title="{self.text(first_reason)}">{self.text(_shorten(first_reason))}</td></tr>')
        note = ""
        if len(self.reserve):
            note = (f'<p class="small muted">Below the dashed line, greyed: the next {len(self.reserve)} providers, '
                    f'in line if one of the top {self.k} cannot be visited.</p>')
        if len(self.cards) < len(self.top):
            note += f'<p class="small muted">Cards are included for the top {len(self.cards)} only.</p>'
        return (f'<section id="ranking"><h2>Where to send the {self.k} inspection teams</h2>'
                '<table class="ranking"><thead><tr><th class="num">rank</th><th>provider</th><th class="num">suspicion</th>'
                '<th class="num">money at stake</th><th class="num">flagged / claims</th><th>suspected schemes</th>'
                f'<th>top reason</th></tr></thead><tbody>{"".join(rows)}</tbody></table>{note}</section>')

    def reasons_of(self, row) -> list[tuple[str, str]]:
        """(reason, detector) pairs, strongest first."""
        reasons = self.result.reasons
        pid = str(row.provider_id)
        if reasons is not None and len(reasons):
            mine = reasons[reasons["id"].astype(str) == pid]
            if "strength" in mine:
                mine = mine.sort_values("strength", ascending=False, kind="stable")
            mine = mine.drop_duplicates("reason").head(CARD_REASONS)
            if len(mine):
                detectors = mine["detector"] if "detector" in mine else pd.Series("", index=mine.index)
                return [(str(r), str(d)) for r, d in zip(mine["reason"], detectors)]
        text = str(row.reasons) if pd.notna(row.reasons) else ""
        return [(r, "") for r in text.split(" | ") if r.strip()]

    def network(self, provider_id: str):
        if self._network is None:
            self._network = _claims_network(self.batch)
        return neighbourhood(self._network, provider_id, max_nodes=max(50, int(NETWORK_NODES * self.scale)))

    def card(self, row, claims: pd.DataFrame, peer_boxes: dict) -> str:
        pid = str(row.provider_id)
        anchor = self.card_ids[pid]
        tier = _tier(row.tier)
        facts = [("suspicion", _suspicion(row.suspicion)), ("money at stake", _money(row.money_at_stake)),
                 ("fund paid", _money(row.fund_paid)), ("claims", f"{int(row.claims):,}"),
                 ("flagged claims", f"{int(row.flagged_claims):,}")]
        facts_html = "".join(f"<div><b>{v}</b><span>{_e(k)}</span></div>" for k, v in facts)
        # Only the densest block the provider is in is drawn: looser ones would colour half the network.
        blocks = sorted(blocks_of(self.result.blocks, pid), key=_block_density, reverse=True)
        block_chips = "".join(f'<span class="chip block">{_e(_block_summary(n, b, m))}</span>' for n, b, m in blocks[:1])
        if len(blocks) > 1:
            block_chips += f'<span class="chip block">and {len(blocks) - 1} looser dense block{"s" if len(blocks) > 2 else ""}</span>'
        reasons = "".join(
            f'<li>{self.text(r)}{f"<span class=tag>{_e(DETECTOR_NAMES.get(d, d))}</span>" if d else ""}</li>'
            for r, d in self.reasons_of(row)) or '<li class="muted">No written reasons.</li>'

        evidence_ids = [c for c in str(row.evidence_claims).split(";") if c] if pd.notna(row.evidence_claims) else []
        if len(claims):
            cost_fig, cost_caption = cost_figure(claims, self.pseudonym, set(evidence_ids),
                                                 peer_boxes.get(str(row.provider_type)), seed=int(row.rank),
                                                 scale=self.scale)
            cost_html = self.figure(f"{anchor}-costs", cost_fig, cost_caption)
        else:
            cost_html = '<p class="muted">No claims of this provider in the batch.</p>'
        highlight = blocks[0][2] if blocks else set()
        try:
            graph = self.network(pid) if self.batch is not None else None
        except KeyError:  # not in the network: no claims
            graph = None
        if graph is not None:
            net_html = self.figure(f"{anchor}-network",
                                   *network_figure(graph, pid, self.pseudonym, highlight, seed=0))
        else:
            net_html = '<p class="muted">No network: the provider has no claims in the batch.</p>'
        plots = (f'<div class="plots"><div><h3>Claim costs against peers</h3>'
                 f'{cost_html}</div>'
                 f'<div><h3>Network neighbourhood</h3>{net_html}</div></div>')
        return (f'<article class="card" id="{anchor}"><a class="back" href="#ranking">↑ ranking</a>'
                f'<h2><span class="rank">#{int(row.rank)}</span>{_e(pid)}</h2>'
                f'<div class="muted">{_e(row.provider_type)}{tier} · region {_e(row.region)}</div>'
                f'<div class="facts">{facts_html}</div><div>{_scheme_chips(row.schemes)}{block_chips}</div>'
                f'<h3>Why this provider</h3><ol class="reasons">{reasons}</ol>{plots}'
                f'<h3>Evidence claims to pull</h3>{self.evidence(claims, evidence_ids)}</article>')

    def evidence(self, claims: pd.DataFrame, evidence_ids: list[str]) -> str:
        if not evidence_ids:
            return '<p class="muted">No flagged claims.</p>'
        table = claims.set_index(claims["claim_id"].astype(str))
        has_peer = "peer_median_total" in table and table["peer_median_total"].notna().any()
        rows = []
        for cid in evidence_ids:
            if cid not in table.index:
                rows.append(f'<tr><td>{_e(cid)}</td><td colspan="{7 + has_peer}" class="muted">not in the scored claims</td></tr>')
                continue
            c = table.loc[cid]
            if isinstance(c, pd.DataFrame):
                c = c.iloc[0]
            peer = ""
            if has_peer and pd.notna(c["peer_median_total"]) and float(c["peer_median_total"]) > 0:
                peer = f'{_money(c["peer_median_total"])} <span class="muted">(×{float(c["total_amount"]) / float(c["peer_median_total"]):.1f})</span>'
            peer_cell = f'<td class="num">{peer}</td>' if has_peer else ""
            reasons = [r for r in str(c.get("reasons", "") or "").split(" | ") if r.strip() and r != "nan"]
            reasons_html = "<ul>" + "".join(f"<li>{self.text(r)}</li>" for r in reasons) + "</ul>" if reasons else ""
            rows.append(
                f'<tr><td class="id">{_e(cid)}</td><td class="id">{_e(self.pseudonym(c["patient_id"]))}</td><td>{_e(c["care_type"])}</td>'
                f'<td>{_date(c["admit_date"])}<br>{_date(c["discharge_date"])}</td><td>{self.text(c["diagnosis"])}</td>'
                f'<td class="num">{_money(c["total_amount"])}</td>{peer_cell}'
                f'<td class="num">{_suspicion(c["suspicion"])}</td><td>{reasons_html}</td></tr>')
        peer_head = '<th class="num">peer median</th>' if has_peer else ""
        return ('<table class="evidence"><thead><tr><th>claim</th><th>patient</th><th>care</th><th>admitted<br>discharged</th>'
                f'<th>diagnosis</th><th class="num">total</th>{peer_head}<th class="num">suspicion</th>'
                f'<th>reasons</th></tr></thead><tbody>{"".join(rows)}</tbody></table>')

    # ------------------------------------------------------------------ page
    def render(self) -> str:
        claims = self.result.claims
        card_ids = set(self.card_ids)
        mine = claims[claims["provider_id"].astype(str).isin(card_ids)]
        by_provider = {str(p): g for p, g in mine.groupby(mine["provider_id"].astype(str).to_numpy(), sort=False)}
        needs_boxes = "peer_median_total" not in claims or claims["peer_median_total"].isna().all()
        peer_boxes = {}
        if needs_boxes and len(self.cards):
            types = self.result.providers.set_index(self.result.providers["provider_id"].astype(str))["provider_type"]
            peer_boxes = peer_quartiles(claims, types)
        empty = claims.iloc[:0]
        cards = "".join(self.card(row, by_provider.get(str(row.provider_id), empty), peer_boxes)
                        for row in self.cards.itertuples(index=False))
        css = resources.files("fraudkit.report").joinpath("report.css").read_text(encoding="utf-8")
        figures = "\n".join(f'<script type="application/json" data-figure="{div}">{payload}</script>'
                            for div, payload in self.figures)
        batch_name = self.summary.get("batch") or getattr(self.batch, "source", "") or ""
        return (
            '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
            '<meta name="viewport" content="width=device-width, initial-scale=1">'
            f'<title>Flight inspection report · {_e(batch_name)}</title><style>{css}</style>'
            f'<script>{get_plotlyjs()}</script></head><body>{self.header()}<main>'
            f'{self.ranking()}{cards}'
            '<footer>Suspicion is the probability, under fraudkit\'s combination of detectors, that a provider\'s evidence is '
            'not chance; money at stake is the fund paid on its flagged claims weighted by their suspicion. '
            'Patients are shown as salted pseudonyms (P-…); find a patient through the claim id in the claims system. '
            'A ranking is a reason to look, not proof of fraud.</footer>'
            f'</main>{figures}<script>{_BOOT}</script></body></html>\n')


def _block_density(found) -> float:
    block = found[1]
    for key in ("density_ratio", "density"):
        value = block.get(key) if isinstance(block, dict) else None
        if value is not None and np.isfinite(float(value)):
            return float(value)
    return 0.0


def _block_summary(number: int, block: dict, members: set[str]) -> str:
    """'dense block 1: 20 patients, 2 providers, 14× the batch's density, ¥98,765'."""
    parts = []
    for key in ("patients", "providers", "doctors"):
        n = block.get(f"n_{key}", len(block.get(key) or []))
        if n:
            parts.append(f"{int(n):,} {key if n != 1 else key[:-1]}")
    if not parts:
        parts.append(f"{len(members):,} members")
    ratio = block.get("density_ratio")
    if ratio is not None and np.isfinite(float(ratio)):
        parts.append(f"{float(ratio):,.1f}× the batch's density")
    elif block.get("density") is not None:
        parts.append(f"density {float(block['density']):.2f}")
    if block.get("money") is not None:
        parts.append(_money(block["money"]))
    return f"dense block {number}: " + ", ".join(parts)


def _claims_network(batch):
    from fraudkit.graph import ClaimsNetwork

    return ClaimsNetwork.from_batch(batch)


def neighbourhood(network, provider_id: str, max_nodes: int = NETWORK_NODES):
    """The provider's ego network (two hops, at most ``max_nodes`` nodes)."""
    from fraudkit.graph import ego_network

    return ego_network(network, provider_id, radius=2, max_nodes=max_nodes)


def write_report(result, batch, path, *, max_cards: int | None = None, salt: str | bytes | None = None) -> Path:
    """Write the inspection report: one self-contained HTML file that works offline.

    It shows the batch and the inspection budget k with the money at stake in the top k;
    the ranked inspection list (the top k, then the next few greyed) with suspicion, money
    at stake, suspected schemes and top reason; and one card per provider in the top k with
    its reasons, its claims' costs against peers, its network neighbourhood (its dense block
    highlighted) and the evidence claims to pull. plotly.js is embedded once.

    Patient ids never appear: they are shown as HMAC-SHA256 pseudonyms (``P-3fa9c2e1``),
    also where a reason's text quotes one. Every text from the input is HTML-escaped.

    Parameters
    ----------
    result : fraudkit.pipeline.ScoreResult
    batch : fraudkit.io.Batch
        The scored batch (its patients for pseudonymisation, its claims for the networks).
    path : str or Path
        The HTML file to write (its folder must exist).
    max_cards : int, optional
        Cards for at most this many providers (default: every provider in the top k).
    salt : str or bytes, optional
        Pseudonymisation key. Default: a random one, forgotten after writing, so the
        report cannot be linked back to patients except through claim ids. With a fixed
        salt the same inputs give a byte-identical file.

    Returns
    -------
    Path
        ``path``.

    Examples
    --------
    >>> from fraudkit.io import load_batch
    >>> from fraudkit.pipeline import load_model
    >>> batch = load_batch("data/demo")                                   # doctest: +SKIP
    >>> result = load_model("models/default").score(batch, inspections=20)  # doctest: +SKIP
    >>> write_report(result, batch, "out/report.html", max_cards=10)      # doctest: +SKIP
    PosixPath('out/report.html')
    """
    path = Path(path)
    html = _Report(result, batch, salt, max_cards).render()
    path.write_text(html, encoding="utf-8")
    return path
