# Training: public pre-training (demo), target models per recipe, the evaluation model; weights.


localrules:
    fetch_weights,


rule fetch_weights:
    """Download every file under `weights` (needs internet: run it on a login node)."""
    output:
        [weights_file(key) for key in config["weights"]],
    log:
        f"{LOGS}/fetch_weights.log",
    conda:
        "../../envs/lsmia.yaml"
    params:
        weights=config["weights"],
        files={key: weights_file(key) for key in config["weights"]},
    run:
        from lsmia.weights import fetch_weights_rule

        fetch_weights_rule(params.weights, params.files, log[0])


rule pretrain_public:
    """Pre-train an architecture on the public synthetic identities (the demo's ImageNet)."""
    input:
        data=lambda wc: packed(wc.dataset, "public"),
    output:
        model=f"{RES}/models/{{dataset}}/public/{{arch}}/model.pt",
        metrics=f"{RES}/models/{{dataset}}/public/{{arch}}/metrics.json",
    log:
        f"{LOGS}/pretrain_public/{{dataset}}/{{arch}}.log",
        epochs=f"{LOGS}/pretrain_public/{{dataset}}/{{arch}}.epochs.csv",
    benchmark:
        f"{BENCH}/pretrain_public/{{dataset}}/{{arch}}.tsv"
    wildcard_constraints:
        dataset=datasets_of("synthetic"),
    conda:
        "../../envs/lsmia.yaml"
    threads: job_threads(config, "train")
    resources:
        gpu=1,
        mem_mb=memory(8000),
        runtime=runtime(60, resumable=True),
    params:
        arch=lambda wc: ARCHS[wc.arch],
        recipe=lambda wc: recipe_without_runtime_settings(
            recipe_params("public") if "public" in config["recipes"] else config["training"]
        ),
        names=lambda wc: {"architecture": wc.arch, "recipe": "public"},
        workdir=lambda wc: f"{RES}/models/{wc.dataset}/public/{wc.arch}/checkpoint",
    script:
        "../scripts/train.py"


rule train_target:
    """A target model: one (dataset, architecture, recipe)."""
    input:
        data=lambda wc: packed(wc.dataset),
        pretrained=lambda wc: pretrained_input(wc.arch),
        imported=lambda wc: recipe_params(wc.recipe).get("init") or [],
    output:
        model=f"{RES}/models/{{dataset}}/{{arch}}/{{recipe}}/model.pt",
        metrics=f"{RES}/models/{{dataset}}/{{arch}}/{{recipe}}/metrics.json",
    log:
        f"{LOGS}/train_target/{{dataset}}/{{arch}}/{{recipe}}.log",
        epochs=f"{LOGS}/train_target/{{dataset}}/{{arch}}/{{recipe}}.epochs.csv",
    benchmark:
        f"{BENCH}/train_target/{{dataset}}/{{arch}}/{{recipe}}.tsv"
    conda:
        "../../envs/lsmia.yaml"
    threads: job_threads(config, "train")
    resources:
        gpu=1,
        mem_mb=memory(32000),
        runtime=runtime(480, resumable=True),
    params:
        arch=lambda wc: ARCHS[wc.arch],
        recipe=lambda wc: recipe_rule_params(wc.recipe),
        names=lambda wc: {"architecture": wc.arch, "recipe": wc.recipe},
        workdir=lambda wc: f"{RES}/models/{wc.dataset}/{wc.arch}/{wc.recipe}/checkpoint",
    script:
        "../scripts/train.py"


rule train_evaluation_model:
    """The evaluation model that judges attack success (another architecture, same private data)."""
    input:
        unpack(_evaluation_inputs),
    output:
        model=f"{RES}/models/{{dataset}}/evaluation/model.pt",
        metrics=f"{RES}/models/{{dataset}}/evaluation/metrics.json",
    log:
        f"{LOGS}/train_evaluation_model/{{dataset}}.log",
        epochs=f"{LOGS}/train_evaluation_model/{{dataset}}.epochs.csv",
    benchmark:
        f"{BENCH}/train_evaluation_model/{{dataset}}.tsv"
    conda:
        "../../envs/lsmia.yaml"
    threads: job_threads(config, "train")
    resources:
        gpu=1,
        mem_mb=memory(32000),
        runtime=runtime(480, resumable=True),
    params:
        arch=lambda wc: ARCHS[DATASETS[wc.dataset]["evaluation"]["architecture"]],
        recipe=lambda wc: recipe_rule_params(DATASETS[wc.dataset]["evaluation"]["recipe"]),
        names=lambda wc: {
            "architecture": DATASETS[wc.dataset]["evaluation"]["architecture"],
            "recipe": DATASETS[wc.dataset]["evaluation"]["recipe"],
        },
        workdir=lambda wc: f"{RES}/models/{wc.dataset}/evaluation/checkpoint",
    script:
        "../scripts/train.py"
