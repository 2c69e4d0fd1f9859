# Fit the hashes (token -> exit layer) of every HashEE setting of a task and seed on train+dev,
# in one job: the backbone and data load once.


rule fit_hash:
    input:
        data=task_data,
    output:
        [f"{RESULTS}/hashes/{{task}}/{setting}/{{seed}}/hash.pt" for setting in HASH_SETTINGS],
    log:
        f"{LOGS}/hashes/{{task}}/{{seed}}.log",
    benchmark:
        f"{BENCHMARKS}/hashes/{{task}}/{{seed}}.tsv"
    params:
        data_dir=data_dir,
        backbone=config["backbone"],
        pairs=lambda wildcards, output: " ".join(
            f"--setting {shlex.quote(setting)} --setting-out {shlex.quote(out)}"
            for setting, out in zip(HASH_SETTINGS, output)
        ),
        buckets=config["hash"]["buckets"],
        max_length=max_length,
    threads: 1
    priority: 5  # gates a task's HashEE train jobs
    resources:
        mem_mb=4000,
        runtime=30,
    conda:
        "../../environment.yml"
    shell:
        "OMP_NUM_THREADS={threads} hashee fit-hash --task {wildcards.task:q} --data-dir {params.data_dir:q}"
        " --backbone {params.backbone:q} {params.pairs}"
        " --buckets {params.buckets} --max-length {params.max_length} --seed {wildcards.seed}"
        " > {log:q} 2>&1"
