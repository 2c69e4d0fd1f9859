# ELUE submissions, one per entry of SUBMISSIONS (config.smk: `submission`, then `more_submissions`): a
# method/setting's test predictions at the first seed, per task, with their `modules` traces, checked by the
# validator, then zipped for upload. One rule per submission (rule `submission` and `zip_submission` for the
# first; `submission_<method>`, `zip_submission_<method>` for the others): the folders need no wildcard. All are
# local rules: Snakemake runs them itself, never submits them to a cluster.


for rule_name, entry, folder in SUBMISSIONS:
    rule:
        name:
            rule_name
        localrule: True
        input:
            unpack(submission_input(entry)),
        output:
            directory(folder),
        priority: 5  # ready once the submitted method's models exist: beside training, not before the timing stage
        log:
            f"{LOGS}/submission/{rule_name}.log",
        benchmark:
            f"{BENCHMARKS}/submission/{rule_name}.tsv"
        params:
            data_dir=data_dir,
            tasks=",".join(TASKS),
            flops_cache=f"{WORK}/flops-cache",
            plugins_env=launch_detail(PLUGINS_ENV),
        threads: 1
        conda:
            "../../environment.yml"
        shell:
            "({params.plugins_env}hashee submit --predictions {input.predictions:q} --model {input.models:q}"
            " --out-dir {output:q} --flops-cache {params.flops_cache:q}"
            " && hashee validate-submission {output:q} --data-dir {params.data_dir:q} --tasks {params.tasks:q})"
            " > {log:q} 2>&1"

    rule:
        # Only the files ELUE reads (not Snakemake's .snakemake_timestamp), sorted, with fixed timestamps:
        # the same submission gives a byte-identical zip, written under a temporary name and renamed.
        name:
            f"zip_{rule_name}"
        localrule: True
        input:
            folder,
        output:
            f"{folder}.zip",
        log:
            f"{LOGS}/submission/zip_{rule_name}.log",
        threads: 1
        conda:
            "../../environment.yml"
        shell:
            "hashee zip-submission {input:q} {output:q} > {log:q} 2>&1"
