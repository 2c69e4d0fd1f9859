# Bootstrap replicates of every test point (docs/uncertainty.md): one job reads every run's test
# predictions (and per-instance FLOPs) with the labelled test sets; the tables step turns the
# replicates into intervals. One resampling per task, shared by all runs, so comparisons pair.


rule bootstrap:
    input:
        predictions=run_paths(f"{RESULTS}/train/{RUN}/predictions"),
        rows=run_paths(f"{RESULTS}/train/{RUN}/rows.csv"),
        data=[path for task in TASKS for path in data_files(task)],
    output:
        f"{RESULTS}/bootstrap.npz",
    log:
        f"{LOGS}/bootstrap/bootstrap.log",
    benchmark:
        f"{BENCHMARKS}/bootstrap/bootstrap.tsv"
    params:
        data_dir=data_dir,  # the folder of the first data input (inputs.smk)
    threads: 1
    conda:
        "../../environment.yml"
    shell:
        "hashee bootstrap --data-dir {params.data_dir:q} --out {output:q}"
        " --predictions {input.predictions:q} > {log:q} 2>&1"
