"""Check the paper's claims (PAPER.md) against the collected metrics: each claim is an inequality
evaluated on the numbers as they are, or "not evaluated" with the reason when its inputs are absent.

``spec`` is the config's ``artefacts`` section: the claims read the rows named by ``main_table``,
``architectures``, ``training_size``, ``stage_ablation``, ``defence_comparison`` and
``gradient_similarity``. A recipe's role comes from its target model: α > 0 is positive LS, α = 0
without defence is the hard-label baseline, α < 0 is negative LS.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path

import pandas as pd

from lsmia.io import atomic_path
from lsmia.paper.figures import pareto_front
from lsmia.paper.html import table_html
from lsmia.paper.tables import METRICS, training_size_recipe

CLAIM_COLUMNS = ("id", "statement", "inequality", "holds", "evaluated", "reason")


class _Absent(Exception):
    """The inputs a claim needs are not in this configuration's data."""


def evaluate_claims(
    df: pd.DataFrame,
    spec: Mapping,
    gradient_logs: Mapping[str, pd.DataFrame] | None = None,
) -> pd.DataFrame:
    """One row per claim: id, statement, inequality (with the numbers), holds (True/False, or None
    when not evaluated), evaluated, reason (why not evaluated)."""
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
    claims.append(
        _guard(
            "small_data",
            "The effect of positive LS on Acc@1 is strongest with little training data.",
            _small_data_claim,
            df,
            spec.get("training_size"),
        )
    )
    claims += _stage_claims(df, spec.get("stage_ablation"))
    claims.append(
        _guard(
            "defence_pareto",
            "Negative LS beats MID and BiDO on the utility–privacy "
            "trade-off: some negative-LS model is dominated by no defence model in "
            "the (test accuracy ↑, Acc@1 ↓) plane.",
            _defence_claim,
            df,
            spec.get("defence_comparison"),
        )
    )
    claims.append(
        _guard(
            "gradient_stability",
            "Negative LS gives the attacker less stable "
            "gradient directions: the mean cosine similarity of consecutive gradients "
            "is lower than for the hard-label model.",
            _gradient_claim,
            df,
            spec.get("gradient_similarity"),
            gradient_logs,
        )
    )
    return pd.DataFrame(claims, columns=list(CLAIM_COLUMNS))


def write_claims(
    claims: pd.DataFrame, out_md: str | os.PathLike, out_csv: str | os.PathLike
) -> None:
    """``claims.csv`` (one row per claim), ``claims.md`` (a readable summary with counts) and the
    same as ``claims.html`` next to it (for the report's front page)."""
    with atomic_path(out_csv) as tmp:
        claims.to_csv(tmp, index=False)
    evaluated = claims[claims["evaluated"]]
    held = int(evaluated["holds"].astype(bool).sum())
    summary = (
        f"{held} of {len(evaluated)} evaluated claims hold; {len(claims) - len(evaluated)} not "
        "evaluated. Strict inequalities on the measured numbers, no tolerance."
    )
    lines = [
        "# Claims check",
        "",
        summary,
        "",
        "| Claim | Statement | Inequality | Result |",
        "| :--- | :--- | :--- | :--- |",
    ]
    rows = []
    for claim in claims.itertuples():
        if not claim.evaluated:
            result = f"not evaluated: {claim.reason}"
        else:
            result = "holds" if claim.holds else "does not hold"
        rows.append((claim.id, claim.statement, claim.inequality or "–", result))
        cells = rows[-1][:3] + (result if claim.holds or not claim.evaluated else f"**{result}**",)
        lines.append("| " + " | ".join(str(c).replace("|", r"\|") for c in cells) + " |")
    with atomic_path(out_md) as tmp:
        tmp.write_text("\n".join(lines) + "\n", encoding="utf-8")
    html = table_html(("Claim", "Statement", "Inequality", "Result"), rows, (False,) * 4,
                      "Claims check", before=[summary])
    with atomic_path(Path(out_md).with_suffix(".html")) as tmp:
        tmp.write_text(html, encoding="utf-8")


def _claim(claim_id, statement, inequality, holds) -> dict:
    return {
        "id": claim_id,
        "statement": statement,
        "inequality": inequality,
        "holds": bool(holds),
        "evaluated": True,
        "reason": "",
    }


def _not_evaluated(claim_id, statement, reason) -> dict:
    return {
        "id": claim_id,
        "statement": statement,
        "inequality": "",
        "holds": None,
        "evaluated": False,
        "reason": reason,
    }


def _guard(claim_id, statement, evaluate, df, section, *extra) -> dict:
    if not section:
        return _not_evaluated(claim_id, statement, "the config has no artefact section for it")
    try:
        inequality, holds = evaluate(df, section, *extra)
    except _Absent as absent:
        return _not_evaluated(claim_id, statement, str(absent))
    return _claim(claim_id, statement, inequality, holds)


def _row(df: pd.DataFrame, dataset: str, architecture: str, recipe: str) -> pd.Series:
    match = df[
        (df["dataset"] == dataset)
        & (df["architecture"] == architecture)
        & (df["recipe"] == recipe)
        & ~df["stage_ablation"].astype(bool)
    ]
    if match.empty:
        raise _Absent(f"no attack metrics for {dataset}/{architecture}/{recipe}")
    return match.iloc[0]


def _roles(df, dataset, architecture, recipes) -> dict[str, pd.Series]:
    """The positive-LS, hard and negative-LS rows among ``recipes`` (exactly one each)."""
    rows = [_row(df, dataset, architecture, r) for r in recipes]
    found: dict[str, list] = {"positive": [], "hard": [], "negative": []}
    for row in rows:
        if isinstance(row["defence"], str):
            continue
        role = "positive" if row["alpha"] > 0 else "negative" if row["alpha"] < 0 else "hard"
        found[role].append(row)
    for role, matches in found.items():
        if len(matches) != 1:
            raise _Absent(
                f"recipes {list(recipes)} on {dataset}/{architecture} hold "
                f"{len(matches)} {role} recipes; exactly one is needed"
            )
    return {role: matches[0] for role, matches in found.items()}


def _value(row: pd.Series, key: str) -> float:
    value = row[key]
    if value is None or pd.isna(value):
        raise _Absent(f"{METRICS[key].label} was not computed for {row['recipe']}")
    return float(value)


def _chain(key: str, rows: Sequence[pd.Series], relation: str) -> tuple[str, bool]:
    """``a > b > c`` (or ``<``) over the rows' ``key``, with the numbers in display units."""
    column = METRICS[key]
    values = [_value(r, key) for r in rows]
    text = f" {relation} ".join(f"{r['recipe']} {column.text(v)}" for r, v in zip(rows, values))
    pairs = zip(values, values[1:])
    holds = all(a > b for a, b in pairs) if relation == ">" else all(a < b for a, b in pairs)
    return f"{column.header()}: {text}", holds


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
    claims = []
    ordered = [roles["positive"], roles["hard"], roles["negative"]]
    for key, relation, statement in _ORDERINGS:
        try:
            inequality, holds = _chain(key, ordered, relation)
        except _Absent as absent:
            claims.append(_not_evaluated(f"{key}_order:{where}", statement, str(absent)))
            continue
        claims.append(_claim(f"{key}_order:{where}", statement, inequality, holds))
    inequality, holds = _chain("test_accuracy", [roles["negative"], roles["hard"]], "<")
    claims.append(_claim(f"nls_accuracy_cost:{where}", _COST, inequality, holds))
    return claims


def _small_data_claim(df, section) -> tuple[str, bool]:
    dataset, architecture = section["dataset"], section["architecture"]
    smallest = min(section["sizes"])
    full = _roles(df, dataset, architecture, section["recipes"])
    positive, hard = full["positive"]["recipe"], full["hard"]["recipe"]
    small_pos = _row(df, dataset, architecture, training_size_recipe(positive, smallest))
    small_hard = _row(df, dataset, architecture, training_size_recipe(hard, smallest))
    gap_small = 100 * (_value(small_pos, "acc1") - _value(small_hard, "acc1"))
    gap_full = 100 * (_value(full["positive"], "acc1") - _value(full["hard"], "acc1"))
    inequality = (
        f"Acc@1(+LS) − Acc@1(hard) in points: {gap_small:.2f} at "
        f"{int(small_pos['num_train_images'])} images > {gap_full:.2f} at "
        f"{int(full['positive']['num_train_images'])} images"
    )
    return inequality, gap_small > gap_full


def _stage_claims(df, section) -> list[dict]:
    statement = (
        "The effect acts mainly through the optimisation stage: swapping its target model "
        "changes Acc@1 more than swapping the sampling or the selection model."
    )
    if not section:
        return [
            _not_evaluated(
                "stage_optimisation", statement, "the config has no artefact section for it"
            )
        ]
    dataset, architecture, baseline = (
        section["dataset"],
        section["architecture"],
        section["baseline"],
    )
    here = df[(df["dataset"] == dataset) & (df["architecture"] == architecture)]
    acc1 = {
        tuple(r[f"recipe_{s}"] for s in ("sample", "optimise", "select")): r["acc1"]
        for _, r in here.iterrows()
    }
    claims = []
    for other in section["others"]:
        for host, swap in ((baseline, other), (other, baseline)):
            claim_id = f"stage_optimisation:{dataset}:{architecture}:{host}<-{swap}"
            combos = [(host,) * 3] + [
                tuple(swap if i == j else host for j in range(3)) for i in range(3)
            ]
            missing = [c for c in combos if c not in acc1]
            if missing:
                if host == baseline:
                    claims.append(
                        _not_evaluated(
                            claim_id,
                            statement,
                            "no attack for stage recipes "
                            + "; ".join("/".join(c) for c in missing)
                            + " (sample/optimise/select)",
                        )
                    )
                continue
            change = [100 * abs(acc1[c] - acc1[combos[0]]) for c in combos[1:]]
            inequality = (
                f"|ΔAcc@1| in points when swapping {host} → {swap}: optimisation "
                f"{change[1]:.2f} > sampling {change[0]:.2f} and selection {change[2]:.2f}"
            )
            claims.append(
                _claim(
                    claim_id, statement, inequality, change[1] > change[0] and change[1] > change[2]
                )
            )
    return claims


def _defence_claim(df, section) -> tuple[str, bool]:
    dataset, architecture = section["dataset"], section["architecture"]
    rows = pd.DataFrame([_row(df, dataset, architecture, r) for r in section["recipes"]])
    defended = rows[rows["defence"].apply(lambda d: isinstance(d, str))]
    negative = rows[rows["defence"].apply(lambda d: not isinstance(d, str)) & (rows["alpha"] < 0)]
    if defended.empty or negative.empty:
        raise _Absent(
            f"defence_comparison needs defended and negative-LS models; found "
            f"{len(defended)} defended, {len(negative)} negative-LS"
        )
    candidates = pd.concat([negative, defended], ignore_index=True)
    front = set(pareto_front(candidates[["test_accuracy", "acc1"]].to_numpy()))
    winners = [candidates.loc[i, "recipe"] for i in range(len(negative)) if i in front]

    def point(r):
        return f"{r.recipe} ({100 * r.test_accuracy:.2f}, {100 * r.acc1:.2f})"

    inequality = (
        "(test acc. %, Acc@1 %): negative LS "
        + ", ".join(point(r) for r in negative.itertuples())
        + "; defences "
        + ", ".join(point(r) for r in defended.itertuples())
        + f"; non-dominated negative-LS models: {', '.join(winners) or 'none'}"
    )
    return inequality, bool(winners)


def _gradient_claim(df, section, logs) -> tuple[str, bool]:
    if not logs:
        raise _Absent("no gradient logs were given")
    roles = _roles(df, section["dataset"], section["architecture"], section["recipes"])
    means = {}
    for role in ("hard", "negative"):
        recipe = roles[role]["recipe"]
        if recipe not in logs:
            raise _Absent(f"no gradient log for {recipe}")
        means[role] = (recipe, float(logs[recipe]["grad_cos_mean"].mean()))
    (neg, neg_mean), (hard, hard_mean) = means["negative"], means["hard"]
    inequality = (
        f"mean over iterations of cos(∇ₜ, ∇ₜ₋₁): {neg} {neg_mean:.4f} < {hard} {hard_mean:.4f}"
    )
    return inequality, neg_mean < hard_mean
