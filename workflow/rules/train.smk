# Fine-tune one model per task x method x setting x seed; best-on-dev model under results/,
# resumable checkpoints under work/ (deliberately not an output: a killed job resumes). The same
# process then evaluates the saved model (dev+test metrics per sweep point, FLOPs, test predictions):
# on small data a job's start-up (~6 s of imports) outweighs the evaluation itself. Timing is not
# done here, beside other jobs, but in its own stage (timing.smk).


rule train:
    input:
        unpack(train_input),
    output:
        model=directory(f"{RESULTS}/train/{RUN}/model"),
        rows=f"{RESULTS}/train/{RUN}/rows.csv",
        predictions=directory(f"{RESULTS}/train/{RUN}/predictions"),
    log:
        f"{LOGS}/train/{RUN}.log",
    benchmark:
        f"{BENCHMARKS}/train/{RUN}.tsv"
    params:
        data_dir=data_dir,
        backbone=backbone_of,  # the config's, or the one a backbone=<label> setting names (backbones.smk)
        hash_file=hash_file_arg,
        epochs=train_param("epochs"),
        lr=train_param("lr"),
        batch_size=train_param("batch_size"),
        max_length=max_length,
        warmup=train_param("warmup"),
        weight_decay=train_param("weight_decay"),
        clip=train_param("clip"),
        freeze=lambda wildcards: "--freeze-word-embeddings" if TRAIN["freeze_word_embeddings"] else "",
        checkpoint_every=TRAIN["checkpoint_every"],
        progress_every=launch_detail(config["progress_every"]),  # how the job logs, not what it computes
        workdir=f"{WORK}/{RUN}",
        flops_cache=f"{WORK}/flops-cache",
        gpus=GPUS,
        gpu_locks=GPU_LOCK_DIR,
        gpu_slots=launch_detail(GPU_SLOTS),
        plugins_env=launch_detail(PLUGINS_ENV),
    threads: 1
    resources:
        gpu=1,
        mem_mb=8000,
        runtime=240,
    conda:
        "../../environment.yml"
    shell:
        "{params.plugins_env}OMP_NUM_THREADS={threads} python {params.gpu_slots} --slots {params.gpus}"
        " --lock-dir {params.gpu_locks:q}/$(uname -n) --"
        " hashee train --task {wildcards.task:q} --data-dir {params.data_dir:q}"
        " --method {wildcards.method:q} --setting {wildcards.setting:q} --seed {wildcards.seed}"
        " --backbone {params.backbone:q} {params.hash_file}"
        " --epochs {params.epochs} --lr {params.lr} --batch-size {params.batch_size}"
        " --max-length {params.max_length} --warmup {params.warmup}"
        " --weight-decay {params.weight_decay} --clip {params.clip} {params.freeze}"
        " --checkpoint-every {params.checkpoint_every} --progress-every {params.progress_every}"
        " --workdir {params.workdir:q} --out {output.model:q}"
        " --evaluate-out {output.rows:q} --predictions {output.predictions:q}"
        " --flops-cache {params.flops_cache:q} --quiet > {log:q} 2>&1"
