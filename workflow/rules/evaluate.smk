# Attack metrics. Real-image embeddings are computed once per (dataset, extractor) and shared by
# FID, PRDC and the distances of every attack on that dataset.


rule real_embeddings:
    """Features of the real private training images under one extractor (eval, face or fid)."""
    input:
        data=lambda wc: packed(wc.dataset),
        extractor=lambda wc: extractor_spec(wc.dataset, wc.extractor)["path"],
    output:
        f"{RES}/embeddings/{{dataset}}/{{extractor}}.pt",
    params:
        extractor=lambda wc: extractor_spec(wc.dataset, wc.extractor),
        batch_size=config["metrics"]["batch_size"],
        device=config["device"],
    wildcard_constraints:
        extractor="|".join(EXTRACTORS),
    log:
        f"{LOGS}/real_embeddings/{{dataset}}/{{extractor}}.log",
    benchmark:
        f"{BENCH}/real_embeddings/{{dataset}}/{{extractor}}.tsv"
    threads: 1
    resources:
        gpu=1,
        mem_mb=32000,
        runtime=120,
    script:
        "../scripts/real_embeddings.py"


def _metrics_inputs(wildcards):
    dataset = wildcards.dataset
    inputs = {
        "selected": f"{attack_dir(dataset, wildcards.arch, wildcards.rs, wildcards.ro, wildcards.rsel)}/select.pt",
        "optimised": f"{attack_dir(dataset, wildcards.arch, wildcards.rs, wildcards.ro)}/optimise.pt",
        "data": packed(dataset),
        "evaluation_model": evaluation_model(dataset),
        **{f"embeddings_{name}": embeddings_file(dataset, name) for name in EXTRACTORS},
        **{f"extractor_{name}": extractor_spec(dataset, name)["path"] for name in ("face", "fid")},
        **generator_inputs(wildcards),
    }
    if DATASETS[dataset]["source"] == "synthetic":
        inputs["private_codes"] = f"{RES}/data/{dataset}/private/identity_codes.npy"
    return inputs


rule attack_metrics:
    """Acc@1/5, δ_face, δ_eval, FID, PRDC and target confidence of one attack."""
    input:
        unpack(_metrics_inputs),
    output:
        f"{RES}/attacks/{{dataset}}/{{arch}}/{{rs}}/{{ro}}/{{rsel}}/metrics.json",
    params:
        extractors=lambda wc: {name: extractor_spec(wc.dataset, name) for name in EXTRACTORS},
        attack=lambda wc: attack_params(wc.dataset, wc.rs),
        prdc_k=config["metrics"]["prdc_k"],
        batch_size=config["metrics"]["batch_size"],
        synthetic=lambda wc: DATASETS[wc.dataset]["source"] == "synthetic",
        device=config["device"],
    log:
        f"{LOGS}/attack_metrics/{{dataset}}/{{arch}}/{{rs}}/{{ro}}/{{rsel}}.log",
    benchmark:
        f"{BENCH}/attack_metrics/{{dataset}}/{{arch}}/{{rs}}/{{ro}}/{{rsel}}.tsv"
    threads: 1
    resources:
        gpu=1,
        mem_mb=32000,
        runtime=120,
    script:
        "../scripts/attack_metrics.py"


def knowledge_recipe(run):
    """The student's recipe, seeded with the replicate seed of the attack it learns from."""
    return {**recipe_params(config["metrics"]["knowledge"]["recipe"]), "seed": replicate_seed(config, run)}


rule knowledge_extraction:
    """ξ: train a fresh student only on the attack images; test it on the real identities."""
    input:
        selected=f"{RES}/attacks/{{dataset}}/{{arch}}/{{recipe}}/{{recipe}}/{{recipe}}/select.pt",
        data=lambda wc: packed(wc.dataset),
        pretrained=lambda wc: pretrained_input(config["metrics"]["knowledge"]["architecture"]),
    output:
        f"{RES}/attacks/{{dataset}}/{{arch}}/{{recipe}}/{{recipe}}/{{recipe}}/knowledge.json",
    params:
        arch=ARCHS[config["metrics"]["knowledge"]["architecture"]],
        recipe=lambda wc: knowledge_recipe(wc.recipe),
        device=config["device"],
        workdir=lambda wc: f"{RES}/attacks/{wc.dataset}/{wc.arch}/{wc.recipe}/{wc.recipe}/{wc.recipe}/knowledge",
    log:
        f"{LOGS}/knowledge_extraction/{{dataset}}/{{arch}}/{{recipe}}.log",
        epochs=f"{LOGS}/knowledge_extraction/{{dataset}}/{{arch}}/{{recipe}}.epochs.csv",
    benchmark:
        f"{BENCH}/knowledge_extraction/{{dataset}}/{{arch}}/{{recipe}}.tsv"
    threads: 1
    resources:
        gpu=1,
        mem_mb=32000,
        runtime=720,
    script:
        "../scripts/knowledge_extraction.py"
