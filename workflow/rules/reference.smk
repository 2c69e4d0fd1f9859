# The ELUE reference curve (performance vs FLOPs): measured from reference.method's runs, or a
# user-supplied CSV (reference.file) copied in.

if REFERENCE["file"] is None:

    rule reference:
        input:
            runs=f"{RESULTS}/runs.csv",
        output:
            f"{RESULTS}/reference.csv",
        log:
            f"{LOGS}/reference/reference.log",
        benchmark:
            f"{BENCHMARKS}/reference/reference.tsv"
        params:
            method=REFERENCE["method"],
            provenance=reference_provenance(),
        threads: 1
        conda:
            "../../environment.yml"
        shell:
            "hashee reference --runs {input.runs:q} --method {params.method:q} --out {output:q}"
            " --provenance {params.provenance:q} > {log:q} 2>&1"

else:

    rule reference:
        input:
            REFERENCE["file"],
        output:
            f"{RESULTS}/reference.csv",
        log:
            f"{LOGS}/reference/reference.log",
        params:
            partial=lambda wildcards, output: f"{output}.partial",
        threads: 1
        conda:
            "../../environment.yml"
        shell:
            "(cp {input:q} {params.partial:q} && mv {params.partial:q} {output:q}) > {log:q} 2>&1"
