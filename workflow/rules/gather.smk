# Gather every run's rows (written by the train rule, which evaluates what it trained) into one
# runs.csv, with the batch-1 wall-clock of the timing stage (timing.smk): jobs never append to a shared file.


rule gather:
    input:
        rows=run_paths(f"{RESULTS}/train/{RUN}/rows.csv"),
        times=TIMING_FILES,  # timing.smk
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
