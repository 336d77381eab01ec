# Plug & Play attack: three stages, three jobs, three cached outputs. A path
# attacks/<dataset>/<arch>/<rs>/<ro>/<rsel>/ names the recipe of the target used in each stage
# (sample/optimise/select), so the stage ablation reuses what the plain attacks computed.


localrules:
    fetch_stylegan2,


rule fetch_stylegan2:
    """Clone NVlabs' stylegan2-ada-pytorch at the pinned commit and download ffhq.pkl (internet)."""
    output:
        checkout=directory(
            config["attack"]["generator"].get("checkout", "resources/stylegan2-ada-pytorch")
        ),
        pickle=config["attack"]["generator"].get("pickle", "resources/weights/ffhq.pkl"),
    log:
        f"{LOGS}/fetch_stylegan2.log",
    conda:
        "../../envs/lsmia.yaml"
    params:
        spec=config.get("stylegan2", {}),
    run:
        from lsmia.jobs.stylegan2 import fetch_stylegan2_rule

        fetch_stylegan2_rule(params.spec, output.checkout, output.pickle, log[0])


rule attack_sample:
    """Stage 1: score the search space under the target and keep the best latents per class."""
    input:
        unpack(generator_inputs),
        target=lambda wc: target_model(wc.dataset, wc.arch, wc.rs),
        data=lambda wc: manifest(wc.dataset),
    output:
        f"{RES}/attacks/{{dataset}}/{{arch}}/{{rs}}/sample.pt",
    log:
        f"{LOGS}/attack_sample/{{dataset}}/{{arch}}/{{rs}}.log",
    benchmark:
        f"{BENCH}/attack_sample/{{dataset}}/{{arch}}/{{rs}}.tsv"
    conda:
        "../../envs/lsmia.yaml"
    threads: job_threads(config, "attack")
    resources:
        gpu=1,
        mem_mb=memory(32000),
        runtime=runtime(180),
    params:
        attack=lambda wc: attack_params(wc.dataset, wc.rs),
    script:
        "../scripts/attack_stage.py"


rule attack_optimise:
    """Stage 2: optimise the latents against the target (Poincaré loss); resumable per batch."""
    input:
        unpack(generator_inputs),
        sample=f"{RES}/attacks/{{dataset}}/{{arch}}/{{rs}}/sample.pt",
        target=lambda wc: target_model(wc.dataset, wc.arch, wc.ro),
    output:
        result=f"{RES}/attacks/{{dataset}}/{{arch}}/{{rs}}/{{ro}}/optimise.pt",
        gradients=f"{RES}/attacks/{{dataset}}/{{arch}}/{{rs}}/{{ro}}/gradients.csv",
    log:
        f"{LOGS}/attack_optimise/{{dataset}}/{{arch}}/{{rs}}/{{ro}}.log",
        iterations=f"{LOGS}/attack_optimise/{{dataset}}/{{arch}}/{{rs}}/{{ro}}.iterations.csv",
    benchmark:
        f"{BENCH}/attack_optimise/{{dataset}}/{{arch}}/{{rs}}/{{ro}}.tsv"
    conda:
        "../../envs/lsmia.yaml"
    threads: job_threads(config, "attack")
    resources:
        gpu=1,
        mem_mb=memory(32000),
        runtime=runtime(1440, resumable=True),
    params:
        attack=lambda wc: attack_params(wc.dataset, wc.rs),
        state=lambda wc: f"{RES}/attacks/{wc.dataset}/{wc.arch}/{wc.rs}/{wc.ro}/optimise.state.pt",
    script:
        "../scripts/attack_stage.py"


rule attack_select:
    """Stage 3: keep the latents the target is most confident about under random transforms."""
    input:
        unpack(generator_inputs),
        optimised=f"{RES}/attacks/{{dataset}}/{{arch}}/{{rs}}/{{ro}}/optimise.pt",
        target=lambda wc: target_model(wc.dataset, wc.arch, wc.rsel),
    output:
        result=f"{RES}/attacks/{{dataset}}/{{arch}}/{{rs}}/{{ro}}/{{rsel}}/select.pt",
        grid=f"{RES}/attacks/{{dataset}}/{{arch}}/{{rs}}/{{ro}}/{{rsel}}/images.png",
    log:
        f"{LOGS}/attack_select/{{dataset}}/{{arch}}/{{rs}}/{{ro}}/{{rsel}}.log",
    benchmark:
        f"{BENCH}/attack_select/{{dataset}}/{{arch}}/{{rs}}/{{ro}}/{{rsel}}.tsv"
    conda:
        "../../envs/lsmia.yaml"
    threads: job_threads(config, "attack")
    resources:
        gpu=1,
        mem_mb=memory(32000),
        runtime=runtime(240),
    params:
        attack=lambda wc: attack_params(wc.dataset, wc.rs),
    script:
        "../scripts/attack_stage.py"
