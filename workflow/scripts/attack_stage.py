"""One stage of the Plug & Play attack: rules attack_sample, attack_optimise, attack_select."""
from pathlib import Path

from lsmia.config import with_runtime_settings
from lsmia.jobkit import logged
from lsmia.jobs.attack import optimise_job, sample_job, select_job

with logged(snakemake):
    # Batch sizes and the device come from the config, not params: changing them reruns nothing.
    config = snakemake.config
    attack = with_runtime_settings(snakemake.params.attack, config, snakemake.wildcards.dataset)
    common = dict(target=snakemake.input.target, attack=attack, device=config["device"])
    if snakemake.rule == "attack_sample":
        sample_job(out=snakemake.output[0], data_dir=Path(snakemake.input.data).parent, **common)
    elif snakemake.rule == "attack_optimise":
        optimise_job(sample=snakemake.input.sample, out=snakemake.output.result,
                     gradients_csv=snakemake.output.gradients, state=snakemake.params.state,
                     log_csv=snakemake.log.iterations, **common)
    else:
        select_job(optimised=snakemake.input.optimised, out=snakemake.output.result,
                   grid=snakemake.output.grid, **common)
