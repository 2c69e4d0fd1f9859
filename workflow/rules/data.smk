# Inputs the project makes: synthetic ELUE-shaped demo data (only with data.demo.generate: true).
# Real ELUE data is read in place from data.elue_dir; inputs.smk names a missing file.

if DEMO["generate"]:

    rule demo_data:
        output:
            # test_full.tsv: the labelled test split (ELUE keeps its own private), so the demo scores test.
            [f"{ELUE_DIR}/{task}/{split}.tsv" for task in ELUE_TASKS for split in [*SPLITS, "test_full"]],
        log:
            f"{LOGS}/data/demo_data.log",
        benchmark:
            f"{BENCHMARKS}/data/demo_data.tsv"
        params:
            out_dir=lambda wildcards, output: str(Path(output[0]).parents[1]),
            seed=DEMO["seed"],
            size=DEMO["size"],
        threads: 1
        conda:
            "../../environment.yml"
        shell:
            "hashee demo-data {params.out_dir:q} --seed {params.seed} --size {params.size} > {log:q} 2>&1"
