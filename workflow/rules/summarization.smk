# Summarization (issue #7; docs/summarization.md): HashEE on the encoder of BART / CPT against the
# full model, the truncated model and DAT. Per dataset x hashee setting x seed one hash job;
# per dataset x method x setting x seed one run job (train, then generate + ROUGE + FLOPs + time,
# in one process: `hashee train --dataset --evaluate-out`; start-up outweighs a small run); one table job with the paper's numbers beside ours.
# Data: each dataset's folder from summarization.datasets.<name>.path, or offline demo data.

if SUMM_ENABLED and SUMM_DEMO_DIR:

    rule summ_demo_data:
        output:
            [f"{SUMM_DEMO_DIR}/{d}/{f}" for d, files in SUMM_DEMO_FILES.items() for f in files],
        log:
            f"{LOGS}/summarization/demo_data.log",
        benchmark:
            f"{BENCHMARKS}/summarization/demo_data.tsv"
        params:
            out_dir=lambda wildcards, output: str(Path(output[0]).parents[1]),
            seed=SUMM_DEMO.get("seed", 0),
            size=SUMM_DEMO.get("size", "small"),
        threads: 1
        conda:
            "../../environment.yml"
        shell:
            "hashee summ-demo-data --out {params.out_dir:q} --seed {params.seed} --size {params.size} > {log:q} 2>&1"


if SUMM_ENABLED:

    # One rule per setting (summ_fit_hash, summ_fit_hash_1, ...) and per method and setting (summ_run_<method>_<setting>):
    # the setting is fixed in the rule's paths, not a wildcard, which a remote job would get cut at its commas
    # (summarization_common.smk). The shell commands are formatted at run time: what varies goes through params.
    for part, (hash_setting, hash_datasets) in enumerate(summ_hash_settings().items()):

      rule:
        name:
            f"summ_fit_hash_{part}" if part else "summ_fit_hash"
        input:
            data=summ_data,
            backbone=summ_backbone_input(hash_setting),
        output:
            hash=summ_hash_file("{dataset}", hash_setting, "{seed}"),
        log:
            f"{LOGS}/summarization/hashes/{{dataset}}/{hash_setting}/{{seed}}.log",
        benchmark:
            f"{BENCHMARKS}/summarization/hashes/{{dataset}}/{hash_setting}/{{seed}}.tsv"
        wildcard_constraints:
            dataset="|".join(re.escape(d) for d in hash_datasets),
        params:
            setting=hash_setting,
            data_dir=lambda wildcards: SUMM_PATHS[wildcards.dataset],
            backbone=summ_backbone(hash_setting),  # the dataset's, or a more_backbones entry's
            max_source_length=summ_dataset("max_source_length"),
        threads: 1
        resources:
            gpu=0,  # a CPU job (the SLURM profile's default is a GPU job)
            cpus_per_gpu=0,
            mem_mb=4000,
            runtime=30,
        conda:
            "../../environment.yml"
        shell:
            "OMP_NUM_THREADS={threads} hashee fit-hash --dataset {wildcards.dataset:q}"
            " --data-dir {params.data_dir:q} --backbone {params.backbone:q}"
            " --setting {params.setting:q} --setting-out {output.hash:q}"
            " --max-length {params.max_source_length} --seed {wildcards.seed} > {log:q} 2>&1"

    for (run_method, run_setting), run_datasets in summ_run_settings().items():
      run_path = f"{{dataset}}/{run_method}/{run_setting}/{{seed}}"

      rule:
        name:
            f"summ_run_{summ_rule_id(run_method, run_setting)}"
        input:
            unpack(summ_run_input(run_method, run_setting)),
        output:
            model=directory(f"{SUMM_RESULTS}/{run_path}/model"),
            rows=f"{SUMM_RESULTS}/{run_path}/rows.csv",
            predictions=directory(f"{SUMM_RESULTS}/{run_path}/predictions"),
        log:
            f"{LOGS}/summarization/{run_path}.log",
        benchmark:
            f"{BENCHMARKS}/summarization/{run_path}.tsv"
        wildcard_constraints:
            dataset="|".join(re.escape(d) for d in run_datasets),
        params:
            method=run_method,
            data_dir=lambda wildcards: SUMM_PATHS[wildcards.dataset],
            backbone=summ_backbone(run_setting),  # the dataset's, or a more_backbones entry's
            # 'default' names a method's run without settings (a path needs a non-empty segment)
            setting="" if run_setting == "default" else run_setting,
            hash_file=lambda wildcards, input: f"--hash-file {shlex.quote(input.hash)}" if "hash" in input.keys() else "",
            max_source_length=summ_dataset("max_source_length"),
            max_target_length=summ_dataset("max_target_length"),
            decoding=summ_decoding,
            epochs=summ_train("epochs"),
            lr=summ_train("lr"),
            batch_size=summ_train("batch_size"),
            max_train_examples=summ_train("max_train_examples"),
            freeze=lambda wildcards: "--freeze-word-embeddings" if SUMM["train"]["freeze_word_embeddings"] else "",
            warmup=summ_train("warmup"),
            weight_decay=summ_train("weight_decay"),
            clip=summ_train("clip"),
            checkpoint_every=summ_train("checkpoint_every"),
            progress_every=launch_detail(config["progress_every"]),  # logging only: reruns nothing
            time_repeats=SUMM.get("timing", {}).get("repeats", 1),
            time_warmup=SUMM.get("timing", {}).get("warmup", 0),
            workdir=f"{WORK}/summarization/{run_path}",
            gpus=GPUS,
            gpu_locks=GPU_LOCK_DIR,
            gpu_slots=launch_detail(GPU_SLOTS),
        threads: 1
        priority: 10  # long jobs: started early (after the train jobs, longer still) so they do not form the DAG's tail
        resources:
            gpu=1,
            mem_mb=16000,
            runtime=720,
        conda:
            "../../environment.yml"
        shell:
            "OMP_NUM_THREADS={threads} python {params.gpu_slots} --slots {params.gpus}"
            " --lock-dir {params.gpu_locks:q}/$(uname -n) --"
            " hashee train --dataset {wildcards.dataset:q} --data-dir {params.data_dir:q}"
            " --method {params.method:q} --setting={params.setting:q} --seed {wildcards.seed}"
            " --backbone {params.backbone:q} {params.hash_file}"
            " --epochs {params.epochs} --lr {params.lr} --batch-size {params.batch_size}"
            " --max-length {params.max_source_length} --max-target-length {params.max_target_length}"
            " --max-train-examples {params.max_train_examples} {params.freeze} --warmup {params.warmup}"
            " --weight-decay {params.weight_decay} --clip {params.clip} --checkpoint-every {params.checkpoint_every}"
            " --progress-every {params.progress_every}"
            " {params.decoding} --time-repeats {params.time_repeats} --time-warmup {params.time_warmup}"
            " --workdir {params.workdir:q} --out {output.model:q} --evaluate-out {output.rows:q}"
            " --predictions {output.predictions:q} --quiet > {log:q} 2>&1"

    rule summ_table:
        input:
            rows=[f"{SUMM_RESULTS}/{SUMM_RUN}/rows.csv".format(**run) for run in summ_runs()],
            provenance=f"{RESULTS}/provenance.json",  # named in the caption
        output:
            md=f"{RESULTS}/tables/summarization.md",
            csv=f"{RESULTS}/tables/summarization.csv",
            tex=f"{RESULTS}/tables/summarization.tex",
        log:
            f"{LOGS}/summarization/table.log",
        benchmark:
            f"{BENCHMARKS}/summarization/table.tsv"
        params:
            prefix=lambda wildcards, output: output.md[: -len(".md")],
        threads: 1
        conda:
            "../../environment.yml"
        shell:
            "hashee summ-table --runs {input.rows:q} --out-prefix {params.prefix:q} > {log:q} 2>&1"
