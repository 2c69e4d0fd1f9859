# The ELUE submission of one method/setting (first seed): test predictions per task with their
# `modules` traces, checked by the validator, then zipped for upload.


rule submission:
    input:
        unpack(submission_input),
    output:
        directory(f"{RESULTS}/submission"),
    priority: 5  # ready once the submitted method's models exist: beside training, not before the timing stage
    log:
        f"{LOGS}/submission/submission.log",
    benchmark:
        f"{BENCHMARKS}/submission/submission.tsv"
    params:
        data_dir=data_dir,
        tasks=",".join(TASKS),
        flops_cache=f"{WORK}/flops-cache",
        plugins_env=launch_detail(PLUGINS_ENV),
    threads: 1
    conda:
        "../../environment.yml"
    shell:
        "({params.plugins_env}hashee submit --predictions {input.predictions:q} --model {input.models:q} --out-dir {output:q}"
        " --flops-cache {params.flops_cache:q}"
        " && hashee validate-submission {output:q} --data-dir {params.data_dir:q} --tasks {params.tasks:q})"
        " > {log:q} 2>&1"


rule zip_submission:
    # Only the files ELUE reads (not Snakemake's .snakemake_timestamp), sorted, with fixed timestamps:
    # the same submission gives a byte-identical zip, written under a temporary name and renamed.
    input:
        f"{RESULTS}/submission",
    output:
        f"{RESULTS}/submission.zip",
    log:
        f"{LOGS}/submission/zip.log",
    threads: 1
    conda:
        "../../environment.yml"
    shell:
        "hashee zip-submission {input:q} {output:q} > {log:q} 2>&1"
