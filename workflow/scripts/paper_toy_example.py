"""The 2-D toy example of label smoothing and an input-space attack."""
from lsmia.jobkit import logged
from lsmia.paper.toy import run_toy_example

with logged(snakemake):
    print(run_toy_example(snakemake.output.csv, snakemake.output.figure, snakemake.output.pdf))
