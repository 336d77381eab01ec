"""lsmia: label smoothing and model inversion attacks (library behind the Snakemake workflow)."""

__version__ = "0.1.0"
