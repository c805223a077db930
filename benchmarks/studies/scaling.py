"""``scaling`` (001, "SVI Vs MCMC In High Dimensions"): does SVI's advantage over NUTS grow with
dimension, and at what dimension does each guide stop agreeing with the reference?

The document fits its hierarchical regression at J = 8 groups (D = 2J + 4 = 20) and finds SVI
faster than NUTS. Here J runs over powers of two, every size with its own exact reference (the
model's collapsed sampler: the two scales by quadrature, the rest Gaussian), and the run time of
each method is fitted as a power of D (a log-log slope with its standard error,
``scipy.stats.linregress``). SVI's advantage grows with D when NUTS's slope exceeds the guide's
by more than t(m - 2) times their combined standard error (``stats.decide``; m the fewer sizes of
the two fits, so the degrees of freedom are those of the less certain slope).

On the document's centred model NUTS itself diverges (a funnel between the scales and the
groups), so every method also runs on the non-centred form of the same posterior
(``hierarchical_linreg_nc``: the same data per size, the exact reference mapped through the
change of variables, the same settings), and the question is answered where NUTS works
(``scaling_answer``).
"""

from __future__ import annotations

from svi_bench.benchmarks.methods.nuts import NAME as NUTS
from svi_bench.benchmarks.studies.base import Scope, Study, Variant
from svi_bench.benchmarks.studies.scaling_answer import (
    CENTRED,
    NONCENTRED,
    answer,
    derive,
    figure,
)

MODELS = (CENTRED, NONCENTRED)
"""The document's centred model and its non-centred form: one posterior, one data set per size."""
METHODS = (NUTS, "autodiagonalnormal", "automvn", "autoiaf")


def _sizes(groups: tuple[int, ...]) -> tuple[Variant, ...]:
    return tuple(Variant(f"n_groups_{j}", {"n_groups": j},
                         sizes={m: {"n_groups": j} for m in MODELS}) for j in groups)


#: smoke: two sizes only (slopes without a standard error): every cell is a compile, and the two
#: parameterisations double the cells (3 sizes: 150 s of CPU, cold, against 88 s for one model).
SCOPES = {
    "smoke": Scope(MODELS, (NUTS, "autodiagonalnormal"), 2, _sizes((2, 4))),
    "quick": Scope(MODELS, METHODS, 3, _sizes((2, 4, 8, 16, 32, 64))),
    "paper": Scope(MODELS, METHODS, 3, _sizes((2, 4, 8, 16, 32, 64, 128, 256))),
}


STUDY = Study(
    name="scaling",
    question="Does SVI's advantage over NUTS grow with dimension, and at what D does each guide "
             "stop agreeing?",
    document="001",
    section="SVI Vs MCMC In High Dimensions",
    scopes=SCOPES,
    derive=derive,
    answer=answer,
    figure=figure,
    figure_caption="hierarchical_linreg, centred (solid) and non-centred (dashed), at the "
                   "study's sizes (D = 2 n_groups + 4): median run time against D on log-log "
                   "axes with each method's fitted slope in the legend, crosses marking sizes "
                   "where the method's agreement verdict is fail against a reference that "
                   "passed its gates (left); NUTS's median divergences per run (middle); each "
                   "method's median agreement metric against the exact reference (right).",
)
