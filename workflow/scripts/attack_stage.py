"""One stage of the Plug & Play attack: rules attack_sample, attack_optimise, attack_select."""
from lsmia.config import with_runtime_settings
from lsmia.jobkit import logged
from lsmia.jobs.attack import run_stage

with logged(snakemake):
    # Batch sizes and the device come from the config, not params: changing them reruns nothing.
    config = snakemake.config
    attack = with_runtime_settings(snakemake.params.attack, config, snakemake.wildcards.dataset)
    run_stage(snakemake, target=snakemake.input.target, attack=attack, device=config["device"])
