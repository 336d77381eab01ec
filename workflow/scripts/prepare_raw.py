"""Prepare FaceScrub or CelebA from the raw release."""
from pathlib import Path

from lsmia.config import identity_needs
from lsmia.data.raw import prepare_raw
from lsmia.jobkit import logged

with logged(snakemake):
    spec = snakemake.params.spec
    prepare_raw(spec["source"], spec["raw_dir"], str(Path(snakemake.output[0]).parent), spec,
                workers=snakemake.threads,
                identity_needs=identity_needs(snakemake.config, snakemake.wildcards.dataset))
