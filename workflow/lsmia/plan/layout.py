"""Where the files of runs and attacks lie under ``results/<experiment>/`` (rules and the plan
share these paths; rule outputs spell the same layout with wildcards)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Layout:
    """Paths under ``root`` (``results/<experiment>``); run arguments are run names."""

    root: str

    @property
    def paper(self) -> str:
        return f"{self.root}/paper"

    def paper_files(self, outputs: dict[str, str]) -> dict[str, str]:
        """An artefact's outputs (key → file name) as paths under ``paper``."""
        return {key: f"{self.paper}/{file}" for key, file in outputs.items()}

    def target_model(self, dataset: str, arch: str, run: str) -> str:
        return f"{self.root}/models/{dataset}/{arch}/{run}/model.pt"

    def target_metrics(self, dataset: str, arch: str, run: str) -> str:
        return f"{self.root}/models/{dataset}/{arch}/{run}/metrics.json"

    def attack_dir(self, dataset: str, arch: str, rs: str, ro: str | None = None,
                   rsel: str | None = None) -> str:
        """``attacks/<dataset>/<arch>/<sample run>[/<optimise run>[/<select run>]]``."""
        return "/".join([f"{self.root}/attacks/{dataset}/{arch}", rs, *(r for r in (ro, rsel) if r)])

    def attack_metrics(self, dataset: str, arch: str, rs: str, ro: str | None = None,
                       rsel: str | None = None) -> str:
        """metrics.json of an attack; one run means all three stages use that model."""
        return f"{self.attack_dir(dataset, arch, rs, ro or rs, rsel or rs)}/metrics.json"

    def knowledge(self, dataset: str, arch: str, run: str) -> str:
        return f"{self.attack_dir(dataset, arch, run, run, run)}/knowledge.json"

    def selected(self, dataset: str, arch: str, run: str) -> str:
        return f"{self.attack_dir(dataset, arch, run, run, run)}/select.pt"

    def gradient_log(self, dataset: str, arch: str, run: str) -> str:
        return f"{self.attack_dir(dataset, arch, run, run)}/gradients.csv"
