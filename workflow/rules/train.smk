# Fine-tune. train.jobs cuts the planned runs into jobs (train_groups() in planning.smk): per_method (the
# default) one job per method x seed (and backbone, for the backbones experiment) trains every task and
# setting of that method in turn in one process, so the ~9 CPU-s of imports (torch, its optimizer's
# torch._dynamo, transformers, datasets, a tokenizer) are paid once per method, not once per run; per_task
# one job per task x method x seed; per_setting one job per run (GPU clusters). Each run's best-on-dev model
# and its evaluation (dev+test metrics per sweep point, FLOPs, test predictions) land under
# results/<config>/train/{task}/{method}/{setting}/{seed}/; resumable checkpoints under work/ (deliberately
# not an output: a killed job resumes). Timing is not done here, beside other jobs, but in its own stage
# (timing.smk). One rule per group: Snakemake outputs cannot depend on a wildcard, so each group's tasks or
# settings are spelled out in its rule. The shell command is formatted when the job runs, after the loop:
# everything it takes from `group` goes through params.


for group in train_groups():
    rule:
        name:
            group.rule_name
        wildcard_constraints:
            task="|".join(re.escape(task) for task in group.tasks),  # unused when the job trains every task
        input:
            data=group.cut.data(),
            hashes=group_hash_files(group),
            backbone=standin_input(group.backbone),  # the rehearsal's tiny checkpoint
        output:
            models=[directory(path) for path in group_outputs(group, "model")],
            rows=group_outputs(group, "rows.csv"),
            predictions=[directory(path) for path in group_outputs(group, "predictions")],
        log:
            f"{LOGS}/train/{group.job_path}/{{seed}}.log",
        benchmark:
            f"{BENCHMARKS}/train/{group.job_path}/{{seed}}.tsv"
        params:
            data_dir=data_dir,
            tasks=group.cut.task_args(),
            method=group.method,  # params, not the shell text: a loop's shell command is formatted at run time
            method_source=plugin_source_digest(group.method),  # not in the command: reruns the job on an edit
            backbone=group.backbone,
            settings=" ".join(f"--setting {shlex.quote(setting)}" for setting in group.settings),
            out=run_pattern(f"{RESULTS}/train", group, "model"),
            rows=run_pattern(f"{RESULTS}/train", group, "rows.csv"),
            predictions_dir=run_pattern(f"{RESULTS}/train", group, "predictions"),
            hash_file=group_hash_arg(group),
            epochs=train_param(group.method, "epochs"),
            lr=train_param(group.method, "lr"),
            batch_size=train_param(group.method, "batch_size"),
            max_length=group.cut.max_length(),
            warmup=train_param(group.method, "warmup"),
            weight_decay=train_param(group.method, "weight_decay"),
            clip=train_param(group.method, "clip"),
            freeze="--freeze-word-embeddings" if TRAIN["freeze_word_embeddings"] else "",
            checkpoint_every=TRAIN["checkpoint_every"],
            max_train_examples=TRAIN["max_train_examples"],
            progress_every=launch_detail(config["progress_every"]),  # how the job logs, not what it computes
            workdir=run_pattern(WORK, group),
            flops_cache=f"{WORK}/flops-cache",
            gpus=GPUS,
            gpu_locks=GPU_LOCK_DIR,
            gpu_slots=launch_detail(GPU_SLOTS),
            plugins_env=launch_detail(PLUGINS_ENV),
        threads: 1
        priority: group.priority  # the longest first, so that none of them starts last and forms the DAG's tail
        resources:
            gpu=1,  # memory and runtime: the executor's defaults (profiles/slurm: a GPU job's)
        conda:
            "../../environment.yml"
        shell:
            "{params.plugins_env}OMP_NUM_THREADS={threads} python {params.gpu_slots} --slots {params.gpus}"
            " --lock-dir {params.gpu_locks:q}/$(uname -n) --"
            " hashee train {params.tasks} --data-dir {params.data_dir:q}"
            " --method {params.method:q} {params.settings} --seed {wildcards.seed}"
            " --backbone {params.backbone:q} {params.hash_file}"
            " --epochs {params.epochs} --lr {params.lr} --batch-size {params.batch_size}"
            " --max-length {params.max_length} --warmup {params.warmup}"
            " --weight-decay {params.weight_decay} --clip {params.clip} {params.freeze}"
            " --checkpoint-every {params.checkpoint_every} --progress-every {params.progress_every}"
            " --max-train-examples {params.max_train_examples}"
            " --workdir {params.workdir} --out {params.out}"
            " --evaluate-out {params.rows} --predictions {params.predictions_dir}"
            " --flops-cache {params.flops_cache:q} --quiet > {log:q} 2>&1"

