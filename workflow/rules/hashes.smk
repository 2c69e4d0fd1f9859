# Fit one hash (token -> exit layer) per task, hash setting and seed, on train+dev.


rule fit_hash:
    input:
        data=task_data,
    output:
        f"{RESULTS}/hashes/{HASH_RUN}/hash.pt",
    log:
        f"{LOGS}/hashes/{HASH_RUN}.log",
    benchmark:
        f"{BENCHMARKS}/hashes/{HASH_RUN}.tsv"
    params:
        data_dir=data_dir,
        backbone=config["backbone"],
        hash=lambda wildcards: setting_fields(wildcards.setting)["hash"],
        layers=lambda wildcards: setting_fields(wildcards.setting)["layers"],
        buckets=config["hash"]["buckets"],
        max_length=max_length,
    threads: 1
    resources:
        mem_mb=4000,
        runtime=30,
    conda:
        "../../environment.yml"
    shell:
        "OMP_NUM_THREADS={threads} hashee fit-hash --task {wildcards.task:q} --data-dir {params.data_dir:q}"
        " --backbone {params.backbone:q} --hash {params.hash:q} --layers {params.layers}"
        " --buckets {params.buckets} --max-length {params.max_length} --seed {wildcards.seed}"
        " --out {output:q} > {log:q} 2>&1"
