# Fit the hashes (token -> exit layer) of every HashEE setting on train+dev, per seed: one job for every
# task (train.jobs: per_method; tasks of another max_length_by_task in a job of their own) or one per task,
# so the backbone and the imports load once per job (hash_cuts() and the hash_* functions in planning.smk).


for part, cut in enumerate(hash_cuts()):
    rule:
        name:
            f"fit_hash_{part}" if part else "fit_hash"
        wildcard_constraints:
            task="|".join(re.escape(task) for task in cut.tasks),  # unused when the job fits every task
        input:
            data=cut.data(),
            backbone=standin_input(config["backbone"]),
        output:
            [hash_file(task, setting, "{seed}") for task in cut.path_tasks for setting in HASH_SETTINGS],
        log:
            f"{LOGS}/hashes/{hash_job_path(cut, part)}/{{seed}}.log",
        benchmark:
            f"{BENCHMARKS}/hashes/{hash_job_path(cut, part)}/{{seed}}.tsv"
        params:
            data_dir=data_dir,
            tasks=cut.task_args(),
            pairs=hash_pairs(cut),
            backbone=config["backbone"],
            buckets=config["hash"]["buckets"],
            max_length=cut.max_length(),
        threads: 1
        priority: 100  # gates the HashEE train job, one of the longest
        resources:
            mem_mb=4000,
            runtime=30,
        conda:
            "../../environment.yml"
        shell:
            "OMP_NUM_THREADS={threads} hashee fit-hash {params.tasks} --data-dir {params.data_dir:q}"
            " --backbone {params.backbone:q} {params.pairs}"
            " --buckets {params.buckets} --max-length {params.max_length} --seed {wildcards.seed}"
            " > {log:q} 2>&1"
