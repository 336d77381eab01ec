"""Check the paper's claims (PAPER.md) against the collected metrics, as paired statistics.

Each claim compares recipes on the same attacked classes and seeds (``lsmia.paper.stats``): the
effect (a paired difference, in display units: percentage points for accuracies), its 95 %
bootstrap interval over classes within seeds, and a verdict read off the interval: ``holds``,
``reversed`` or ``inconclusive``; or ``not evaluated`` with the reason when its inputs are absent.
A claim of several comparisons (``A > B > C``) holds only when each of them holds; its
``effect``/``ci_*`` columns show the comparison that decides its verdict.

``spec`` is the config's ``artefacts`` section: the claims read the rows named by ``main_table``,
``architectures``, ``training_size``, ``stage_ablation``, ``defence_comparison`` and
``gradient_similarity``. A recipe's role comes from its target model: α > 0 is positive LS, α = 0
without defence is the hard-label baseline, α < 0 is negative LS.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from lsmia.io import atomic_path
from lsmia.paper.html import table_html
from lsmia.paper.stats import (
    HOLDS,
    INCONCLUSIVE,
    REVERSED,
    Interval,
    combined_verdict,
    difference,
    paired_bootstrap,
)
from lsmia.paper.tables import METRICS
from lsmia.plan.names import run_name, stage_swaps

NOT_EVALUATED = "not evaluated"
CLAIM_COLUMNS = ("id", "statement", "comparison", "claimed", "effect", "ci_low", "ci_high",
                 "verdict", "n_seeds", "n_classes", "reason")
_GRADIENT = "grad_cosine"


class _Absent(Exception):
    """The inputs a claim needs are not in this configuration's data."""


@dataclass(frozen=True)
class Comparison:
    """One paired comparison: what it measures, the claimed sign of its effect and its interval."""

    text: str
    claimed: str
    interval: Interval

    @property
    def verdict(self) -> str:
        return self.interval.verdict(self.claimed)

    def describe(self) -> str:
        i = self.interval
        return f"{self.text} = {i.effect:+.2f} [{i.low:+.2f}, {i.high:+.2f}] ({self.verdict})"


def evaluate_claims(df: pd.DataFrame, spec: Mapping) -> pd.DataFrame:
    """One row per claim (``CLAIM_COLUMNS``)."""
    claims: list[dict] = []
    main = spec.get("main_table")
    if main:
        for dataset in main["datasets"]:
            claims += _ordering_claims(df, dataset, main["architecture"], main["recipes"])
    else:
        claims += _orderings_not_evaluated("main_table", "the config has no main_table section")
    arch = spec.get("architectures")
    if arch:
        for architecture in arch["architectures"]:
            claims += _ordering_claims(df, arch["dataset"], architecture, arch["recipes"])
    claims.append(_guard(
        "small_data",
        "The effect of positive LS on Acc@1 is strongest with little training data.",
        _small_data_claim, df, spec.get("training_size"),
    ))
    claims += _stage_claims(df, spec.get("stage_ablation"))
    claims.append(_guard(
        "defence_pareto",
        "Negative LS beats MID and BiDO on the utility–privacy trade-off: some negative-LS model "
        "is dominated by no defence model in the (test accuracy ↑, Acc@1 ↓) plane.",
        _defence_claim, df, spec.get("defence_comparison"),
    ))
    claims.append(_guard(
        "gradient_stability",
        "Negative LS gives the attacker less stable gradient directions: the mean cosine "
        "similarity of consecutive gradients is lower than for the hard-label model.",
        _gradient_claim, df, spec.get("gradient_similarity"),
    ))
    return pd.DataFrame(claims, columns=list(CLAIM_COLUMNS))


def write_claims(
    claims: pd.DataFrame, out_md: str | os.PathLike, out_csv: str | os.PathLike
) -> None:
    """``claims.csv`` (one row per claim), ``claims.md`` (a readable summary with counts) and the
    same as ``claims.html`` next to it (for the report's front page)."""
    with atomic_path(out_csv) as tmp:
        claims.to_csv(tmp, index=False)
    counts = claims["verdict"].value_counts()
    evaluated = claims[claims["verdict"] != NOT_EVALUATED]
    seeds = sorted({int(n) for n in evaluated["n_seeds"]})
    summary = [
        f"Of {len(evaluated)} evaluated claims, {counts.get(HOLDS, 0)} hold, "
        f"{counts.get(REVERSED, 0)} are reversed and {counts.get(INCONCLUSIVE, 0)} are "
        f"inconclusive; {counts.get(NOT_EVALUATED, 0)} not evaluated. Seeds per comparison: "
        f"{', '.join(map(str, seeds)) or '–'}.",
        "Each comparison is a paired difference (recipes on the same classes and seeds; "
        "accuracies in percentage points) with its 95 % bootstrap interval over classes within "
        "seeds. A claim holds when every interval lies on the claimed side of zero, is reversed "
        "when one lies on the other side, and is inconclusive otherwise.",
    ]
    lines = [
        "# Claims check",
        "",
        summary[0],
        "",
        summary[1],
        "",
        "| Claim | Statement | Comparisons: effect [95 % CI] | Verdict |",
        "| :--- | :--- | :--- | :--- |",
    ]
    rows = []
    for claim in claims.itertuples():
        if claim.verdict == NOT_EVALUATED:
            result = f"not evaluated: {claim.reason}"
        else:
            result = claim.verdict if claim.verdict == HOLDS else f"**{claim.verdict}**"
            result += f" ({claim.n_seeds} seeds × {claim.n_classes} classes)"
        cells = (claim.id, claim.statement, claim.comparison or "–", result)
        rows.append(cells[:3] + (result.replace("**", ""),))
        lines.append("| " + " | ".join(str(c).replace("|", r"\|") for c in cells) + " |")
    with atomic_path(out_md) as tmp:
        tmp.write_text("\n".join(lines) + "\n", encoding="utf-8")
    html = table_html(("Claim", "Statement", "Comparisons: effect [95 % CI]", "Verdict"), rows,
                      (False,) * 4, "Claims check", before=summary)
    with atomic_path(Path(out_md).with_suffix(".html")) as tmp:
        tmp.write_text(html, encoding="utf-8")


def _claim(claim_id: str, statement: str, comparisons: Sequence[Comparison],
           verdict: str | None = None) -> dict:
    """A claim made of ``comparisons`` that must all hold (unless ``verdict`` is given)."""
    verdict = verdict or combined_verdict([c.verdict for c in comparisons])
    deciding = _deciding(comparisons, verdict)
    interval = deciding.interval
    return {
        "id": claim_id,
        "statement": statement,
        "comparison": "; ".join(c.describe() for c in comparisons),
        "claimed": f"{deciding.text} {deciding.claimed} 0",
        "effect": interval.effect,
        "ci_low": interval.low,
        "ci_high": interval.high,
        "verdict": verdict,
        "n_seeds": min(c.interval.n_seeds for c in comparisons),
        "n_classes": min(c.interval.n_classes for c in comparisons),
        "reason": "",
    }


def _deciding(comparisons: Sequence[Comparison], verdict: str) -> Comparison:
    """The comparison behind ``verdict``: the first with that verdict, and for ``holds`` the one
    whose interval comes closest to zero."""
    if verdict == HOLDS:
        def margin(c):
            return c.interval.low if c.claimed == ">" else -c.interval.high
        return min([c for c in comparisons if c.verdict == HOLDS] or comparisons, key=margin)
    return next((c for c in comparisons if c.verdict == verdict), comparisons[0])


def _not_evaluated(claim_id, statement, reason) -> dict:
    return {
        "id": claim_id, "statement": statement, "comparison": "", "claimed": "",
        "effect": math.nan, "ci_low": math.nan, "ci_high": math.nan, "verdict": NOT_EVALUATED,
        "n_seeds": 0, "n_classes": 0, "reason": reason,
    }


def _guard(claim_id, statement, evaluate, df, section) -> dict:
    if not section:
        return _not_evaluated(claim_id, statement, "the config has no artefact section for it")
    try:
        comparisons, verdict = evaluate(df, section)
    except _Absent as absent:
        return _not_evaluated(claim_id, statement, str(absent))
    return _claim(claim_id, statement, comparisons, verdict)


def _runs(df: pd.DataFrame, dataset: str, architecture: str, recipe: str) -> pd.DataFrame:
    """The rows (one per seed) of plain attacks on ``recipe``."""
    match = df[
        (df["dataset"] == dataset)
        & (df["architecture"] == architecture)
        & (df["recipe"] == recipe)
        & ~df["stage_ablation"].astype(bool)
    ]
    if match.empty:
        raise _Absent(f"no attack metrics for {dataset}/{architecture}/{recipe}")
    return match


def _paired(key: str, groups: Sequence[pd.DataFrame], names: Sequence[str]) -> np.ndarray:
    """``seeds×classes×len(groups)``: per-class ``key`` of each group (rows keyed by seed), on the
    seeds and classes all groups share."""
    tables = []
    for rows, name in zip(groups, names):
        by_seed = {}
        for row in rows.itertuples():
            values = (row.per_class or {}).get(key)
            if not values:
                raise _Absent(f"no per-class {_label(key)} for {name} (seed {row.seed})")
            by_seed[int(row.seed)] = values
        tables.append(by_seed)
    seeds = sorted(set.intersection(*(set(t) for t in tables)))
    if not seeds:
        raise _Absent(f"{', '.join(names)} share no seed")
    classes = sorted(set.intersection(*(set(t[s]) for t in tables for s in seeds)))
    if not classes:
        raise _Absent(f"{', '.join(names)} share no attacked class")
    return np.array([[[t[s][c] for t in tables] for c in classes] for s in seeds])


def _label(key: str) -> str:
    """The metric's name (differences of percentages are in percentage points)."""
    return METRICS[key].label.removesuffix(" (%)") if key in METRICS else "gradient cosine"


def _scale(key: str) -> float:
    return METRICS[key].scale if key in METRICS else 1.0


def _compare(key: str, a: tuple[str, pd.DataFrame], b: tuple[str, pd.DataFrame],
             claimed: str) -> Comparison:
    """``key(a) − key(b)`` paired on seeds and classes, claimed ``>`` or ``<`` zero."""
    values = _paired(key, [a[1], b[1]], [a[0], b[0]])
    text = f"{_label(key)}: {a[0]} − {b[0]}"
    return Comparison(text, claimed, difference(values).scaled(_scale(key)))


def _roles(df, dataset, architecture, recipes,
           needed=("positive", "hard", "negative")) -> dict[str, tuple[str, pd.DataFrame]]:
    """The positive-LS, hard and negative-LS recipes among ``recipes`` (exactly one of each role in
    ``needed``), each as (name, its rows)."""
    found: dict[str, list] = {"positive": [], "hard": [], "negative": []}
    for recipe in recipes:
        rows = _runs(df, dataset, architecture, recipe)
        first = rows.iloc[0]
        if isinstance(first["defence"], str):
            continue
        alpha = first["alpha"]
        role = "positive" if alpha > 0 else "negative" if alpha < 0 else "hard"
        found[role].append((recipe, rows))
    found = {role: found[role] for role in needed}
    for role, matches in found.items():
        if len(matches) != 1:
            raise _Absent(
                f"recipes {list(recipes)} on {dataset}/{architecture} hold "
                f"{len(matches)} {role} recipes; exactly one is needed"
            )
    return {role: matches[0] for role, matches in found.items()}


_ORDERINGS = (
    (
        "acc1",
        ">",
        "Positive LS leaks more and negative LS less: Acc@1(+LS) > Acc@1(hard) > Acc@1(−LS).",
    ),
    (
        "delta_face",
        "<",
        "Attack images lie closer to the training data with positive LS: "
        "δ_face(+LS) < δ_face(hard) < δ_face(−LS).",
    ),
    (
        "delta_eval",
        "<",
        "Likewise in the evaluation model's features: δ_eval(+LS) < δ_eval(hard) < δ_eval(−LS).",
    ),
    (
        "xi_train",
        ">",
        "More extractable knowledge with positive LS: ξ_train(+LS) > ξ_train(hard) > ξ_train(−LS).",
    ),
    (
        "xi_test",
        ">",
        "More extractable knowledge with positive LS: ξ_test(+LS) > ξ_test(hard) > ξ_test(−LS).",
    ),
)
_COST = "Negative LS costs (moderate) test accuracy: test acc.(−LS) < test acc.(hard)."


def _orderings_not_evaluated(where: str, reason: str) -> list[dict]:
    claims = [
        _not_evaluated(f"{key}_order:{where}", statement, reason)
        for key, _, statement in _ORDERINGS
    ]
    return claims + [_not_evaluated(f"nls_accuracy_cost:{where}", _COST, reason)]


def _ordering_claims(df, dataset, architecture, recipes) -> list[dict]:
    where = f"{dataset}:{architecture}"
    try:
        roles = _roles(df, dataset, architecture, recipes)
    except _Absent as absent:
        return _orderings_not_evaluated(where, str(absent))
    positive, hard, negative = roles["positive"], roles["hard"], roles["negative"]
    checks = [
        (f"{key}_order:{where}", statement,
         lambda key=key, rel=relation: [_compare(key, positive, hard, rel),
                                        _compare(key, hard, negative, rel)])
        for key, relation, statement in _ORDERINGS
    ]
    checks.append((f"nls_accuracy_cost:{where}", _COST,
                   lambda: [_compare("test_accuracy", negative, hard, "<")]))
    return [_evaluated(claim_id, statement, build) for claim_id, statement, build in checks]


def _evaluated(claim_id: str, statement: str,
               build: Callable[[], Sequence[Comparison]]) -> dict:
    try:
        return _claim(claim_id, statement, build())
    except _Absent as absent:
        return _not_evaluated(claim_id, statement, str(absent))


def _small_data_claim(df, section) -> tuple[list[Comparison], None]:
    """A difference in differences, paired per class and seed: (+LS − hard) at the smallest size
    minus (+LS − hard) on the full training set."""
    dataset, architecture = section["dataset"], section["architecture"]
    smallest = min(section["sizes"])
    full = _roles(df, dataset, architecture, section["recipes"], needed=("positive", "hard"))
    names = [run_name(full["positive"][0], smallest), run_name(full["hard"][0], smallest),
             full["positive"][0], full["hard"][0]]
    groups = [_runs(df, dataset, architecture, n) for n in names[:2]]
    groups += [full["positive"][1], full["hard"][1]]
    values = _paired("acc1", groups, names)
    interval = paired_bootstrap(
        values, lambda m: (m[..., 0] - m[..., 1]) - (m[..., 2] - m[..., 3])
    ).scaled(_scale("acc1"))
    text = f"Acc@1: ({names[0]} − {names[1]}) − ({names[2]} − {names[3]})"
    return [Comparison(text, ">", interval)], None


_STAGE_STATEMENT = (
    "The effect acts mainly through the optimisation stage: swapping its target model "
    "changes Acc@1 more than swapping the sampling or the selection model."
)


def _stage_claims(df, section) -> list[dict]:
    if not section:
        return [_not_evaluated("stage_optimisation", _STAGE_STATEMENT,
                               "the config has no artefact section for it")]
    dataset, architecture, baseline = (
        section["dataset"], section["architecture"], section["baseline"],
    )
    here = df[(df["dataset"] == dataset) & (df["architecture"] == architecture)]
    runs = {}
    for combo, rows in here.groupby(["recipe_sample", "recipe_optimise", "recipe_select"]):
        runs[combo] = rows
    claims = []
    for other in section["others"]:
        claim_id = f"stage_optimisation:{dataset}:{architecture}:{baseline}<-{other}"
        combos = [(baseline,) * 3, *stage_swaps(baseline, other)]
        missing = [c for c in combos if c not in runs]
        if missing:
            reason = ("no attack for stage recipes " + "; ".join("/".join(c) for c in missing)
                      + " (sample/optimise/select)")
            claims.append(_not_evaluated(claim_id, _STAGE_STATEMENT, reason))
            continue
        claims.append(_evaluated(claim_id, _STAGE_STATEMENT,
                                 lambda c=combos, o=other: _stage_comparisons(runs, c, o)))
    return claims


def _stage_comparisons(runs, combos, other) -> list[Comparison]:
    """|ΔAcc@1| of the optimisation swap minus that of the sampling (and of the selection) swap,
    each |Δ| a paired mean over classes and seeds."""
    values = _paired("acc1", [runs[c] for c in combos], ["/".join(c) for c in combos])
    comparisons = []
    for stage, index in (("sampling", 1), ("selection", 3)):
        interval = paired_bootstrap(
            values,
            lambda m, i=index: np.abs(m[..., 2] - m[..., 0]) - np.abs(m[..., i] - m[..., 0]),
        ).scaled(_scale("acc1"))
        text = f"|ΔAcc@1| swapping in {other}: optimisation − {stage}"
        comparisons.append(Comparison(text, ">", interval))
    return comparisons


def _defence_claim(df, section) -> tuple[list[Comparison], str]:
    """Per negative-LS model n and defence d, paired per class: Acc@1(d) − Acc@1(n) and test
    acc.(n) − test acc.(d). n is shown undominated by d when either interval lies above zero
    (n significantly better in one criterion), dominated when both lie below. Holds when some n
    is shown undominated by every d; reversed when every n is dominated by some d."""
    dataset, architecture = section["dataset"], section["architecture"]
    runs = {r: _runs(df, dataset, architecture, r) for r in section["recipes"]}
    defended = [r for r, rows in runs.items() if isinstance(rows.iloc[0]["defence"], str)]
    negative = [r for r, rows in runs.items()
                if not isinstance(rows.iloc[0]["defence"], str) and rows.iloc[0]["alpha"] < 0]
    if not defended or not negative:
        raise _Absent(
            f"defence_comparison needs defended and negative-LS models; found "
            f"{len(defended)} defended, {len(negative)} negative-LS"
        )
    comparisons, undominated, dominated = [], [], []
    for n in negative:
        shown_free, beaten = True, False
        for d in defended:
            privacy = _compare("acc1", (d, runs[d]), (n, runs[n]), ">")
            utility = _compare("test_accuracy", (n, runs[n]), (d, runs[d]), ">")
            comparisons += [privacy, utility]
            verdicts = {privacy.verdict, utility.verdict}
            shown_free &= HOLDS in verdicts
            beaten |= verdicts == {REVERSED}
        undominated += [n] if shown_free else []
        dominated += [n] if beaten else []
    if undominated:
        return comparisons, HOLDS
    return comparisons, REVERSED if len(dominated) == len(negative) else INCONCLUSIVE


def _gradient_claim(df, section) -> tuple[list[Comparison], None]:
    roles = _roles(df, section["dataset"], section["architecture"], section["recipes"])
    return [_compare(_GRADIENT, roles["negative"], roles["hard"], "<")], None
