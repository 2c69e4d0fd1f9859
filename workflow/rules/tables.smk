# Compiled results: the ELUE table, the hash ablation table (md/csv/tex) and one Pareto plot per task.


rule tables:
    input:
        runs=f"{RESULTS}/runs.csv",
        reference=f"{RESULTS}/reference.csv",
        provenance=f"{RESULTS}/provenance.json",  # named in the captions
        bootstrap=f"{RESULTS}/bootstrap.npz",  # intervals (docs/uncertainty.md)
    output:
        elue_md=f"{RESULTS}/tables/elue.md",
        elue_csv=f"{RESULTS}/tables/elue.csv",
        elue_tex=f"{RESULTS}/tables/elue.tex",
        ablation_md=f"{RESULTS}/tables/hash_ablation.md",
        ablation_csv=f"{RESULTS}/tables/hash_ablation.csv",
        ablation_tex=f"{RESULTS}/tables/hash_ablation.tex",
        plots=report([f"{RESULTS}/plots/pareto_{task}.png" for task in TASKS], caption="../report/pareto.rst",
                     category="ELUE", subcategory="Pareto plots"),
    log:
        f"{LOGS}/tables/tables.log",
    benchmark:
        f"{BENCHMARKS}/tables/tables.tsv"
    params:
        out_dir=lambda wildcards, output: str(Path(output.elue_md).parent),
        plots_dir=lambda wildcards, output: str(Path(output.plots[0]).parent),
        config_name=NAME,
        beyond=REFERENCE["beyond"],
        plugins_env=launch_detail(PLUGINS_ENV),  # tables and plots read each method's sweep_keys
        # The paper's points are comparable on the paper's backbone only.
        paper_points="--paper-points" if "elasticbert" in str(config["backbone"]).lower() else "",
        # The ELUE table's backbone column (runs on several backbones): the config's own backbone by its label.
        backbone_label=BACKBONE_OWN or config["backbone"],
    threads: 1
    conda:
        "../../environment.yml"
    shell:
        "{params.plugins_env}hashee tables --runs {input.runs:q} --reference {input.reference:q}"
        " --out-dir {params.out_dir:q} --plots-dir {params.plots_dir:q}"
        " --config-name {params.config_name:q} --beyond {params.beyond}"
        " --bootstrap {input.bootstrap:q} {params.paper_points} --backbone-label {params.backbone_label:q}"
        " > {log:q} 2>&1"
