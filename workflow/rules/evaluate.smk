# Evaluate every trained model (dev+test metrics, FLOPs, test predictions, wall-clock), and gather
# all rows into one runs.csv (jobs never append to a shared file).


rule evaluate:
    input:
        model=f"{RESULTS}/train/{RUN}/model",
        data=task_data,
    output:
        rows=f"{RESULTS}/evaluate/{RUN}/rows.csv",
        predictions=directory(f"{RESULTS}/evaluate/{RUN}/predictions"),
        time=f"{RESULTS}/evaluate/{RUN}/time.csv",
    log:
        f"{LOGS}/evaluate/{RUN}.log",
    benchmark:
        f"{BENCHMARKS}/evaluate/{RUN}.tsv"
    params:
        data_dir=data_dir,
        config_name=NAME,
        flops_cache=f"{WORK}/flops-cache",
        batch_sizes=",".join(str(b) for b in TIMING["batch_sizes"]),
        repeats=TIMING["repeats"],
        max_instances=TIMING["max_instances"],
        gpus=GPUS,
        gpu_locks=GPU_LOCK_DIR,
    threads: 1
    resources:
        gpu=1,
        mem_mb=4000,
        runtime=60,
    conda:
        "../../environment.yml"
    shell:
        # Timing runs in the evaluating process: on small data a job's start-up outweighs it.
        "OMP_NUM_THREADS={threads} python -m hashee.gpu_slots --slots {params.gpus}"
        " --lock-dir {params.gpu_locks:q}/$(uname -n) --"
        " hashee evaluate --model {input.model:q} --data-dir {params.data_dir:q}"
        " --config-name {params.config_name:q} --out {output.rows:q}"
        " --predictions {output.predictions:q} --flops-cache {params.flops_cache:q}"
        " --time-out {output.time:q} --batch-sizes {params.batch_sizes} --repeats {params.repeats}"
        " --max-instances {params.max_instances} --quiet > {log:q} 2>&1"


rule gather:
    input:
        rows=run_paths(f"{RESULTS}/evaluate/{RUN}/rows.csv"),
        times=run_paths(f"{RESULTS}/evaluate/{RUN}/time.csv"),
    output:
        f"{RESULTS}/runs.csv",
    log:
        f"{LOGS}/gather/gather.log",
    benchmark:
        f"{BENCHMARKS}/gather/gather.tsv"
    threads: 1
    conda:
        "../../environment.yml"
    shell:
        "hashee gather --out {output:q} --rows {input.rows:q} --times {input.times:q} > {log:q} 2>&1"
