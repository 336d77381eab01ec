# Attack metrics. Real-image embeddings are computed once per (dataset, extractor) and shared by
# FID, PRDC and the distances of every attack on that dataset.


rule real_embeddings:
    """Features of the real private training images under one extractor (eval, face or fid)."""
    input:
        data=lambda wc: packed(wc.dataset),
        extractor=lambda wc: extractor_spec(wc.dataset, wc.extractor)["path"],
    output:
        f"{RES}/embeddings/{{dataset}}/{{extractor}}.pt",
    log:
        f"{LOGS}/real_embeddings/{{dataset}}/{{extractor}}.log",
    benchmark:
        f"{BENCH}/real_embeddings/{{dataset}}/{{extractor}}.tsv"
    wildcard_constraints:
        extractor="|".join(EXTRACTORS),
    conda:
        "../../envs/lsmia.yaml"
    threads: job_threads(config, "metrics")
    resources:
        gpu=1,
        mem_mb=memory(32000),
        runtime=runtime(120),
    params:
        extractor=lambda wc: extractor_spec(wc.dataset, wc.extractor),
    script:
        "../scripts/real_embeddings.py"


rule attack_metrics:
    """Acc@1/5, δ_face, δ_eval, FID, PRDC and target confidence of one attack."""
    input:
        unpack(_metrics_inputs),
    output:
        f"{RES}/attacks/{{dataset}}/{{arch}}/{{rs}}/{{ro}}/{{rsel}}/metrics.json",
    log:
        f"{LOGS}/attack_metrics/{{dataset}}/{{arch}}/{{rs}}/{{ro}}/{{rsel}}.log",
    benchmark:
        f"{BENCH}/attack_metrics/{{dataset}}/{{arch}}/{{rs}}/{{ro}}/{{rsel}}.tsv"
    conda:
        "../../envs/lsmia.yaml"
    threads: job_threads(config, "metrics")
    resources:
        gpu=1,
        mem_mb=memory(32000),
        runtime=runtime(240),
    params:
        extractors=lambda wc: {name: extractor_spec(wc.dataset, name) for name in EXTRACTORS},
        attack=lambda wc: attack_params(wc.dataset, wc.rs),
        prdc_k=config["metrics"]["prdc_k"],
        synthetic=lambda wc: DATASETS[wc.dataset]["source"] == "synthetic",
    script:
        "../scripts/attack_metrics.py"


rule knowledge_extraction:
    """ξ: train a fresh student only on the attack images; test it on the real identities."""
    input:
        selected=f"{RES}/attacks/{{dataset}}/{{arch}}/{{recipe}}/{{recipe}}/{{recipe}}/select.pt",
        data=lambda wc: packed(wc.dataset),
        pretrained=lambda wc: pretrained_input(config["metrics"]["knowledge"]["architecture"]),
    output:
        f"{RES}/attacks/{{dataset}}/{{arch}}/{{recipe}}/{{recipe}}/{{recipe}}/knowledge.json",
    log:
        f"{LOGS}/knowledge_extraction/{{dataset}}/{{arch}}/{{recipe}}.log",
        epochs=f"{LOGS}/knowledge_extraction/{{dataset}}/{{arch}}/{{recipe}}.epochs.csv",
    benchmark:
        f"{BENCH}/knowledge_extraction/{{dataset}}/{{arch}}/{{recipe}}.tsv"
    conda:
        "../../envs/lsmia.yaml"
    threads: job_threads(config, "knowledge_extraction")
    resources:
        gpu=1,
        mem_mb=memory(32000),
        runtime=runtime(360, resumable=True),
    params:
        arch=ARCHS[config["metrics"]["knowledge"]["architecture"]],
        recipe=lambda wc: knowledge_recipe(wc.recipe),
        workdir=lambda wc: f"{RES}/attacks/{wc.dataset}/{wc.arch}/{wc.recipe}/{wc.recipe}/{wc.recipe}/knowledge",
    script:
        "../scripts/knowledge_extraction.py"
