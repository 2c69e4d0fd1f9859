# hashee-bench: HashEE and early-exit baselines on ELUE.
#   snakemake --cores 8 all                                  offline demo (config/config.yaml)
#   snakemake --cores 8 --configfile config/paper.yaml all   the paper's setup (real ELUE data)
# Stages, one file each under workflow/rules/; config checked against workflow/schemas/ (config.smk).

from snakemake.utils import min_version

min_version("8.0")


configfile: "config/config.yaml"


report: "workflow/report/workflow.rst"


include: "workflow/rules/config.smk"  # validates the config and names it
include: "workflow/rules/planning.smk"  # what it plans
include: "workflow/rules/inputs.smk"  # the rules' input functions
include: "workflow/rules/backbones_common.smk"  # before train.smk: its backbone parameter
include: "workflow/rules/data.smk"
include: "workflow/rules/hashes.smk"
include: "workflow/rules/train.smk"
include: "workflow/rules/timing.smk"
include: "workflow/rules/gather.smk"
include: "workflow/rules/reference.smk"
include: "workflow/rules/bootstrap.smk"
include: "workflow/rules/tables.smk"
include: "workflow/rules/backbones.smk"
include: "workflow/rules/submission.smk"
include: "workflow/rules/difficulty.smk"
include: "workflow/rules/summarization_common.smk"
include: "workflow/rules/summarization.smk"
include: "workflow/rules/rehearsal.smk"  # only with rehearsal.enabled (config/rehearsal.yaml)
include: "workflow/rules/provenance.smk"  # it lists the other stages' data
include: "workflow/rules/report.smk"  # last: it lists the other stages' tables


localrules:
    all,
    gather,
    inference_time,
    reference,
    tables,
    backbones_table,
    difficulty_table,
    summ_table,


rule all:
    default_target: True
    input:
        get_final_output(),
        INFERENCE_TIME_OUTPUTS,  # timing.smk
        f"{RESULTS}/provenance.json",
        REPORT_PAGES,

