# Label smoothing and model inversion: reproduce "Be Careful What You Smooth For" (ICLR 2024).
#   snakemake --profile profiles/slurm all                      # the paper, on a GPU cluster
#   snakemake --configfile config/demo.yaml --cores 2 all       # the embedded demo (make demo)
# The config is validated (workflow/schemas/config.schema.yaml) before any job runs.

import os
import sys

# The workflow's own library (workflow/lsmia) is what the Snakefile and its rules import, before
# any other lsmia on the path (an older checkout's editable install, say), and so does every job,
# also in a conda environment (--sdm conda) that does not install this repository.
LIBRARY = os.path.join(workflow.basedir, "workflow")
sys.path.insert(0, LIBRARY)
os.environ.update(PYTHONPATH=os.pathsep.join(filter(None, [LIBRARY, os.getenv("PYTHONPATH")])))


# The paper's config is the default; --configfile replaces it, --config overrides keys of either.
if not workflow.overwrite_configfiles:

    from lsmia.config import read_config_file

    read_config_file(f"{workflow.basedir}/config/config.yaml")  # a YAML syntax error names its line

    configfile: f"{workflow.basedir}/config/config.yaml"


report: "workflow/report/workflow.rst"


include: "workflow/rules/common.smk"
include: "workflow/rules/data.smk"
include: "workflow/rules/train.smk"
include: "workflow/rules/attack.smk"
include: "workflow/rules/evaluate.smk"
include: "workflow/rules/paper_inputs.smk"
include: "workflow/rules/paper.smk"


rule all:
    default_target: True
    input:
        paper_artefacts(),
