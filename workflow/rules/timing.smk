# The timing stage (docs/timing.md): after training, one job per task (timing.jobs: per_task; `one`: one
# job for every task, all.csv; timed_models() in inputs.smk) loads each of its trained models in turn and
# times their predictions (hashee.measure.timing): batch 1 over many instances one at a time, and batched,
# after warm-up. The job runs alone on its device: on CPU it
# claims every core of the run (threads: workflow.cores, so Snakemake starts nothing beside it;
# its log prints the threads it held), and with it the GPU. Then the comparison of measured and
# FLOPs speed-ups: tables/inference_time.{md,csv,tex} and plots/inference_time_<TASK>.png.

TIMING_FILES = ([f"{RESULTS}/timing/{task}.csv" for task in TASKS] if TIMING["jobs"] == "per_task"
                else [f"{RESULTS}/timing/all.csv"])
INFERENCE_TIME_OUTPUTS = [
    *(f"{RESULTS}/tables/inference_time.{ext}" for ext in ("md", "csv", "tex")),
    *(f"{RESULTS}/plots/inference_time_{task}.png" for task in TASKS),
]


rule time_models:
    wildcard_constraints:
        task="all" if TIMING["jobs"] == "one" else "|".join(re.escape(task) for task in TASKS),
    input:
        models=timed_models,
        data=timing_data,
    output:
        f"{RESULTS}/timing/{{task}}.csv",
    log:
        f"{LOGS}/timing/{{task}}.log",
    benchmark:
        f"{BENCHMARKS}/timing/{{task}}.tsv"
    params:
        data_dir=data_dir,
        batch_sizes=",".join(str(b) for b in TIMING["batch_sizes"]),
        repeats=TIMING["repeats"],
        warmup=TIMING["warmup"],
        max_instances=TIMING["max_instances"],
        max_points=TIMING["max_points"],
        gpus=GPUS,
        gpu_locks=GPU_LOCK_DIR,
        gpu_slots=launch_detail(GPU_SLOTS),
        plugins_env=launch_detail(PLUGINS_ENV),
    threads: workflow.cores
    resources:
        gpu=1,
        mem_mb=8000,
        runtime=120,
    conda:
        "../../environment.yml"
    shell:
        "{params.plugins_env}OMP_NUM_THREADS={threads} python {params.gpu_slots} --slots {params.gpus}"
        " --lock-dir {params.gpu_locks:q}/$(uname -n) --"
        " hashee time --model {input.models:q} --data-dir {params.data_dir:q} --threads {threads}"
        " --batch-sizes {params.batch_sizes} --repeats {params.repeats} --warmup {params.warmup}"
        " --max-instances {params.max_instances} --max-points {params.max_points}"
        " --out {output:q} > {log:q} 2>&1"


rule inference_time:
    input:
        runs=f"{RESULTS}/runs.csv",
        times=TIMING_FILES,
        provenance=f"{RESULTS}/provenance.json",  # named in the caption
    output:
        md=f"{RESULTS}/tables/inference_time.md",
        csv=f"{RESULTS}/tables/inference_time.csv",
        tex=f"{RESULTS}/tables/inference_time.tex",
        plots=report([f"{RESULTS}/plots/inference_time_{task}.png" for task in TASKS],
                     caption="../report/inference_time_plot.rst", category="Inference time", subcategory="Plots"),
    log:
        f"{LOGS}/tables/inference_time.log",
    benchmark:
        f"{BENCHMARKS}/tables/inference_time.tsv"
    params:
        out_dir=lambda wildcards, output: str(Path(output.md).parent),
        plots_dir=lambda wildcards, output: str(Path(output.plots[0]).parent),
        config_name=NAME,
        plugins_env=launch_detail(PLUGINS_ENV),  # the captions read each method's class facts
    threads: 1
    conda:
        "../../environment.yml"
    shell:
        "{params.plugins_env}hashee inference-time --runs {input.runs:q} --times {input.times:q}"
        " --out-dir {params.out_dir:q} --plots-dir {params.plots_dir:q}"
        " --config-name {params.config_name:q} > {log:q} 2>&1"
