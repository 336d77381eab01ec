"""Fetch the StyleGAN2-ADA checkout and the FFHQ pickle (local rule, needs internet)."""
from lsmia.jobkit import logged
from lsmia.jobs.stylegan2 import fetch_stylegan2

with logged(snakemake):
    spec = snakemake.params.spec
    fetch_stylegan2(repository=spec["repository"], commit=spec["commit"],
                    checkout=snakemake.output.checkout, pickle_url=spec["pickle_url"],
                    pickle_sha256=spec.get("pickle_sha256"), pickle=snakemake.output.pickle)
