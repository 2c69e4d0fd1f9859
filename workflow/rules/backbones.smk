# The backbones experiment's rules (docs/backbones.md); its runs, paths and checks are in
# backbones_common.smk.


# A HashEE run (a method with needs_fitted_hash) on another backbone fits its hash with that backbone's tokenizer (fit_hash fits the
# config's own backbone's settings, none of which names a backbone). One rule per backbone label
# (fit_backbone_hash_<label>), its setting spelled out in the paths: a wildcard value with commas reaches a
# remote job (SLURM's) cut at them (snakemake#2366; summarization_common.smk).
for hash_label, hash_setting in backbone_hash_settings().items():

    rule:
        name:
            "fit_backbone_hash_" + re.sub(r"\W", "_", hash_label)
        input:
            data=task_data,
            backbone=standin_input(backbone_for_label(hash_label)),
        output:
            hash_file("{task}", hash_setting, "{seed}"),
        log:
            f"{LOGS}/hashes/{{task}}/{hash_setting}/{{seed}}.log",
        benchmark:
            f"{BENCHMARKS}/hashes/{{task}}/{hash_setting}/{{seed}}.tsv"
        params:
            data_dir=data_dir,
            backbone=backbone_for_label(hash_label),
            setting=hash_setting,
            buckets=config["hash"]["buckets"],
            max_length=max_length,
        threads: 1
        priority: 5
        resources:
            gpu=0,  # a CPU job (the SLURM profile's default is a GPU job)
            cpus_per_gpu=0,
            mem_mb=4000,
            runtime=30,
        conda:
            "../../environment.yml"
        shell:
            "OMP_NUM_THREADS={threads} hashee fit-hash --task {wildcards.task:q} --data-dir {params.data_dir:q}"
            " --backbone {params.backbone:q} --setting {params.setting:q} --setting-out {output:q}"
            " --buckets {params.buckets} --max-length {params.max_length} --seed {wildcards.seed}"
            " > {log:q} 2>&1"


rule backbones_table:
    input:
        runs=f"{RESULTS}/runs.csv",
        provenance=f"{RESULTS}/provenance.json",  # named in the caption
    output:
        md=f"{RESULTS}/tables/backbones.md",
        csv=f"{RESULTS}/tables/backbones.csv",
        tex=f"{RESULTS}/tables/backbones.tex",
        plot=report(f"{RESULTS}/plots/backbones.png", caption="../report/backbones_plot.rst", category="Backbones",
                    subcategory="Plots"),
    log:
        f"{LOGS}/tables/backbones.log",
    benchmark:
        f"{BENCHMARKS}/tables/backbones.tsv"
    params:
        out_dir=lambda wildcards, output: str(Path(output.md).parent),
        labels=",".join(BACKBONES.get("models") or {}),
        own=f"--own {shlex.quote(BACKBONE_OWN)}" if BACKBONE_OWN else "",
        method=BACKBONES_METHOD or "",
        setting=BACKBONES_SETTING,
        reference=BACKBONES_REFERENCE or "",
        reference_setting=BACKBONES.get("reference_setting", ""),
        config_name=NAME,
    threads: 1
    conda:
        "../../environment.yml"
    shell:
        "hashee backbones --runs {input.runs:q} --labels {params.labels:q} {params.own}"
        " --method {params.method:q} --setting {params.setting:q}"
        " --reference {params.reference:q} --reference-setting {params.reference_setting:q}"
        " --out-dir {params.out_dir:q} --plot {output.plot:q} --config-name {params.config_name:q} > {log:q} 2>&1"
