"""Download and verify the configured pre-trained weights."""
from lsmia.jobkit import logged
from lsmia.weights import fetch

with logged(snakemake):
    for key, spec in snakemake.params.weights.items():
        fetch(spec["url"], snakemake.params.files[key], spec.get("sha256"))
