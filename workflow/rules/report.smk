# The Snakemake report (docs/report.md): `make report` runs `snakemake --report results/<config>/report.html`,
# one self-contained page with every table, the Pareto plots and the provenance record, by category.
# Snakemake's report shows images and HTML but offers Markdown or JSON only as a download, so each
# table (tables/<stem>.md) and provenance.json get an HTML page here (`hashee report-page`,
# hashee/measure/report.py); the plots are marked for the report where tables.smk writes them.

REPORT_DIR = f"{RESULTS}/report"

# table stem -> report category; the caption of each is workflow/report/<stem>.rst.
REPORT_TABLES = {"elue": "ELUE", "hash_ablation": "Hash ablation", "inference_time": "Inference time"}
# A stage's table joins the report with one entry here and one caption file, workflow/report/<stem>.rst.
if BACKBONES_ENABLED:
    REPORT_TABLES["backbones"] = "Backbones"
if SUMM_ENABLED:
    REPORT_TABLES["summarization"] = "Summarization"
if DIFFICULTY_ENABLED:
    REPORT_TABLES["difficulty"] = "Difficulty"
REPORT_PAGES = [f"{REPORT_DIR}/{stem}.html" for stem in REPORT_TABLES] + [f"{REPORT_DIR}/provenance.html"]


for _stem, _category in REPORT_TABLES.items():

    rule:
        name:
            f"report_{_stem}"
        localrule: True
        input:
            f"{RESULTS}/tables/{_stem}.md",
        output:
            report(f"{REPORT_DIR}/{_stem}.html", caption=f"../report/{_stem}.rst", category=_category,
                   subcategory="Tables"),
        log:
            f"{LOGS}/report/{_stem}.log",
        params:
            title=f"{_category} ({NAME})",
        threads: 1
        conda:
            "../../environment.yml"
        shell:
            "hashee report-page {input:q} {output:q} --title {params.title:q} > {log:q} 2>&1"


rule report_provenance:
    localrule: True
    input:
        f"{RESULTS}/provenance.json",
    output:
        report(f"{REPORT_DIR}/provenance.html", caption="../report/provenance.rst", category="Provenance"),
    log:
        f"{LOGS}/report/provenance.log",
    params:
        title=f"Provenance ({NAME})",
    threads: 1
    conda:
        "../../environment.yml"
    shell:
        "hashee report-page {input:q} {output:q} --title {params.title:q} > {log:q} 2>&1"
