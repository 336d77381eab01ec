"""Prepare FaceScrub or CelebA from the raw release."""
from pathlib import Path

from lsmia.config import identity_needs
from lsmia.data.raw import missing_raw_releases, prepare_raw, raw_data_report
from lsmia.jobkit import logged

with logged(snakemake):
    out_dir = Path(snakemake.output[0]).parent
    datasets = snakemake.config["datasets"]
    missing = missing_raw_releases(datasets, out_dir.parents[1])
    if snakemake.wildcards.dataset in missing:
        raise FileNotFoundError(raw_data_report(missing))
    spec = {**snakemake.params.spec, "raw_dir": datasets[snakemake.wildcards.dataset]["raw_dir"]}
    prepare_raw(spec["source"], spec["raw_dir"], str(out_dir), spec, workers=snakemake.threads,
                identity_needs=identity_needs(snakemake.config, snakemake.wildcards.dataset))
