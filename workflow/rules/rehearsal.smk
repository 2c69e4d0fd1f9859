# The rehearsal (rehearsal.enabled: config/rehearsal.yaml over config/paper.yaml; docs/paper-run.md): a tiny random
# checkpoint in the hub layout of each hub model the config names (config.smk rewrote each name to
# <hub_dir>/<name>; the rules that load a backbone take that folder as input), and the summarization data sets in
# their real layouts with synthetic text. ELUE's and the difficulty study's data come from their demo rules.

if HUB_STANDINS:

    rule tiny_checkpoint:
        output:
            directory(f"{config['rehearsal']['hub_dir'].rstrip('/')}/{{hub}}"),
        wildcard_constraints:
            hub="|".join(re.escape(name) for name in sorted(set(HUB_STANDINS.values()))),
        log:
            f"{LOGS}/rehearsal/checkpoints/{{hub}}.log",
        benchmark:
            f"{BENCHMARKS}/rehearsal/checkpoints/{{hub}}.tsv"
        params:
            seed=config["rehearsal"]["seed"],
        threads: 1
        resources:
            gpu=0,  # a CPU job (the SLURM profile's default is a GPU job)
            cpus_per_gpu=0,
            mem_mb=2000,
            runtime=10,
        conda:
            "../../environment.yml"
        shell:
            "OMP_NUM_THREADS={threads} hashee tiny-checkpoint --hub-name {wildcards.hub:q} --out {output:q}"
            " --seed {params.seed} > {log:q} 2>&1"


if SUMM_ENABLED and any(summ_synthetic(d) for d in SUMM_DATASETS):

    rule summ_synthetic_data:
        output:
            [f"{SUMM_PATHS[d]}/{f}" for d in SUMM_DATASETS if summ_synthetic(d) for f in summ_generated_files(d)],
        log:
            f"{LOGS}/rehearsal/summarization_data.log",
        benchmark:
            f"{BENCHMARKS}/rehearsal/summarization_data.tsv"
        params:
            writes=" && ".join(
                f"hashee summ-synthetic-data --dataset {shlex.quote(d)} --out {shlex.quote(SUMM_PATHS[d])}"
                f" --seed {SUMM_DEMO.get('seed', 0)} --size {SUMM_DEMO.get('size', 'tiny')}"
                for d in SUMM_DATASETS
                if summ_synthetic(d)
            ),
        threads: 1
        resources:
            gpu=0,
            cpus_per_gpu=0,
            mem_mb=2000,
            runtime=10,
        conda:
            "../../environment.yml"
        shell:
            "({params.writes}) > {log:q} 2>&1"
