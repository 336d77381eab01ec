"""The artefact registry: per paper artefact, the rows it shows, its output files and the
functions that build it (as ``"module:function"``, imported only by the job that runs it).

A new artefact is one selector function here, registered with ``@register_artefact`` (timm's
``register_model`` is the model), its builder in ``lsmia.paper``, and its entry under
``artefacts`` in the config; see docs/extending.md ("Adding an artefact").
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from lsmia.plan.runs import Attack, RunMaker

TABLE = ("csv", "md", "tex")
FIGURE = ("png", "pdf", "csv")


@dataclass(frozen=True)
class ArtefactKind:
    """A registered artefact: ``select(spec, runs) -> [Attack]`` (its rows), its outputs (rule
    output key → file under results/<exp>/paper/), builder and figure (``"module:function"``),
    whether its rows carry ξ (``knowledge``), whether the claims read them (``claims``) and whether
    it shows the first seed only (``single_seed``: pictures of single models); ``script``:
    ``paper_table.py`` for the artefacts built by the one generic table rule of paper.smk."""

    name: str
    select: Callable[[Mapping, RunMaker], list[Attack]]
    outputs: Mapping[str, str]
    builder: str | None = None
    figure: str | None = None
    knowledge: bool = False
    claims: bool = True
    single_seed: bool = False
    script: str | None = None


_REGISTRY: dict[str, ArtefactKind] = {}


def register_artefact(**options) -> Callable:
    """Register the decorated selector under its function name with ``ArtefactKind``'s options."""

    def register(select: Callable) -> Callable:
        name = select.__name__
        if name in _REGISTRY:
            raise ValueError(f"artefact {name!r} is registered twice")
        _REGISTRY[name] = ArtefactKind(name, select, **options)
        return select

    return register


def artefact_kind(name: str) -> ArtefactKind:
    if name not in _REGISTRY:
        raise KeyError(f"unknown artefact {name!r} under 'artefacts'; registered: "
                       f"{sorted(_REGISTRY)} (lsmia.plan.artefacts)")
    return _REGISTRY[name]


def registered_artefacts() -> list[str]:
    return list(_REGISTRY)


def load_function(reference: str) -> Callable:
    """The function named ``"package.module:function"`` (imported only when needed)."""
    module, _, name = reference.partition(":")
    return getattr(importlib.import_module(module), name)


def table_files(stem: str) -> dict[str, str]:
    """A table's outputs: ``table`` (HTML, shown in the report), ``md``, ``csv``, ``tex``."""
    return {"table": f"{stem}.html", **{ext: f"{stem}.{ext}" for ext in ("md", "csv", "tex")}}


def figure_files(stem: str, csv_key: str = "csv") -> dict[str, str]:
    """A figure's outputs: ``figure`` (PNG, shown in the report), ``pdf`` and its data."""
    return {"figure": f"{stem}.png", "pdf": f"{stem}.pdf", csv_key: f"{stem}.csv"}


def _figure_and_table(figure: str, table: str) -> dict[str, str]:
    return {**figure_files(figure, "figure_csv"), **table_files(table)}


def _plain(spec: Mapping, runs: RunMaker) -> list[Attack]:
    """Plain attacks on ``spec``'s dataset, architecture and recipes."""
    return runs.uniform([spec["dataset"]], [spec["architecture"]], spec["recipes"])


@register_artefact(outputs=figure_files("toy_example"), claims=False)
def toy_example(spec, runs):
    return []


@register_artefact(outputs=table_files("main_table"), script="paper_table.py", builder="lsmia.paper.tables:main_table",
                   knowledge=True)
def main_table(spec, runs):
    return runs.uniform(spec["datasets"], [spec["architecture"]], spec["recipes"])


@register_artefact(outputs=table_files("stage_ablation"),
                   script="paper_table.py", builder="lsmia.paper.tables:stage_ablation")
def stage_ablation(spec, runs):
    return runs.stage_swaps(spec["dataset"], spec["architecture"], spec["baseline"],
                            spec["others"])


@register_artefact(outputs=table_files("architectures"), script="paper_table.py", builder="lsmia.paper.tables:architectures")
def architectures(spec, runs):
    return runs.uniform([spec["dataset"]], spec["architectures"], spec["recipes"])


@register_artefact(outputs=_figure_and_table("training_size", "training_size_table"),
                   script="paper_table.py", builder="lsmia.paper.tables:training_size",
                   figure="lsmia.paper.figures:training_size_figure")
def training_size(spec, runs):
    from lsmia.plan.names import run_name

    labels = [run_name(r, size) for r in spec["recipes"] for size in (*spec["sizes"], None)]
    return runs.uniform([spec["dataset"]], [spec["architecture"]], labels)


@register_artefact(outputs=_figure_and_table("alpha_sweep", "alpha_sweep_table"),
                   script="paper_table.py", builder="lsmia.paper.tables:alpha_sweep",
                   figure="lsmia.paper.figures:alpha_sweep_figure")
def alpha_sweep(spec, runs):
    return _plain(spec, runs)


@register_artefact(outputs=_figure_and_table("defence_comparison_plot", "defence_comparison"),
                   script="paper_table.py", builder="lsmia.paper.tables:defence_comparison",
                   figure="lsmia.paper.figures:defence_figure")
def defence_comparison(spec, runs):
    return _plain(spec, runs)


@register_artefact(outputs=figure_files("gradient_similarity"),
                   builder="lsmia.jobs.paper:gradient_artefact")
def gradient_similarity(spec, runs):
    return _plain(spec, runs)


@register_artefact(outputs=figure_files("embeddings"), builder="lsmia.jobs.paper:embeddings_artefact",
                   claims=False, single_seed=True)
def embeddings(spec, runs):
    return _plain(spec, runs)


@register_artefact(outputs=figure_files("sample_grid"),
                   builder="lsmia.jobs.paper:sample_grid_artefact", claims=False, single_seed=True)
def sample_grid(spec, runs):
    return _plain(spec, runs)
