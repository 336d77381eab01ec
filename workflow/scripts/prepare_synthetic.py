"""Render the synthetic private and public face sets (demo data)."""
from pathlib import Path

from lsmia.config import entry_with_defaults
from lsmia.data.synthetic import prepare_synthetic
from lsmia.jobkit import logged

with logged(snakemake):
    spec = entry_with_defaults("dataset", snakemake.params.spec)
    prepare_synthetic(
        Path(snakemake.output.private[0]).parent,
        Path(snakemake.output.public[0]).parent,
        snakemake.output.grid,
        identities=spec["identities"],
        public_identities=spec["public_identities"],
        images_per_identity=spec["images_per_identity"],
        image_size=spec["image_size"],
        test_fraction=spec["test_fraction"],
        seed=spec["split_seed"],
        nuisance_scale=spec["nuisance_scale"],
    )
