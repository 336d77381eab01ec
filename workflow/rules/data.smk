# Dataset preparation: raw releases (or the synthetic face model) -> packed datasets.


rule prepare_synthetic:
    output:
        private=packed("{dataset}", "private"),
        public=packed("{dataset}", "public"),
        private_codes=f"{RES}/data/{{dataset}}/private/identity_codes.npy",
        public_codes=f"{RES}/data/{{dataset}}/public/identity_codes.npy",
        grid=report(
            f"{RES}/data/{{dataset}}/faces.png",
            category="Data",
            caption="../report/synthetic_faces.rst",
        ),
    log:
        f"{LOGS}/prepare_synthetic/{{dataset}}.log",
    benchmark:
        f"{BENCH}/prepare_synthetic/{{dataset}}.tsv"
    wildcard_constraints:
        dataset=datasets_of("synthetic"),
    conda:
        "../../envs/lsmia.yaml"
    threads: job_threads(config, "prepare_synthetic")
    resources:
        mem_mb=memory(8000),
        runtime=runtime(30),
    params:
        spec=lambda wc: DATASETS[wc.dataset],
    script:
        "../scripts/prepare_synthetic.py"


rule prepare_facescrub:
    output:
        packed("{dataset}", "private"),
    log:
        f"{LOGS}/prepare_facescrub/{{dataset}}.log",
    benchmark:
        f"{BENCH}/prepare_facescrub/{{dataset}}.tsv"
    wildcard_constraints:
        dataset=datasets_of("facescrub"),
    conda:
        "../../envs/lsmia.yaml"
    threads: job_threads(config, "prepare_raw")
    resources:
        mem_mb=memory(32000),
        runtime=runtime(180),
    params:
        spec=packing_spec,
    script:
        "../scripts/prepare_raw.py"


use rule prepare_facescrub as prepare_celeba with:
    log:
        f"{LOGS}/prepare_celeba/{{dataset}}.log",
    benchmark:
        f"{BENCH}/prepare_celeba/{{dataset}}.tsv"
    wildcard_constraints:
        dataset=datasets_of("celeba"),
