"""The inspection report: one self-contained HTML file for an inspector who would rather look than read.

:func:`write_report` turns a :class:`fraudkit.pipeline.ScoreResult` into ``report.html``:
the ranked inspection list, then one card per provider in the top k with its reasons,
its claims' costs against peers, its network neighbourhood and its evidence claims.
The file embeds plotly.js once and needs no network; patient ids appear only as salted
pseudonyms (:class:`Pseudonymiser`).
"""

from ._figures import cost_figure, network_figure
from ._page import write_report
from ._pseudonym import Pseudonymiser

__all__ = ["Pseudonymiser", "cost_figure", "network_figure", "write_report"]
