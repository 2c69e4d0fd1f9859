# The difficulty-learnability study (docs/difficulty.md): three jobs of rows
# (human-defined, sentence-level and token-level model-defined difficulty) and one table job.
# Inputs: SNLI 1.0 raw files and a CoNLL-style tagging corpus from difficulty.snli_dir /
# difficulty.tagging_dir, or offline data the project generates in the same layouts.

import json

from hashee.studies.difficulty import STUDIES
from hashee.studies.difficulty.data import SNLI_SPLITS, snli_file  # the raw release's splits and file names

DIFFICULTY = config.get("difficulty") or {"enabled": False}
DIFFICULTY_ENABLED = bool(DIFFICULTY.get("enabled", False))
DIFFICULTY_STUDIES = list(STUDIES)  # the library's
DIFFICULTY_DEMO = DIFFICULTY.get("demo") or {"generate": False}


# difficulty.snli_dir / tagging_dir; a value starting with '$' is read from that environment variable.
DIFFICULTY_DIRS = {
    key: resolve_env_path(
        f"difficulty.{key}", DIFFICULTY[key], "the/data (docs/difficulty.md), or difficulty.enabled: false"
    )
    for key in (("snli_dir", "tagging_dir") if DIFFICULTY_ENABLED else ())
}

# Final outputs of the study: planning.smk's get_final_output() appends difficulty_outputs() (a lambda,
# not a def: `snakemake --lint` wants a rule file free of function definitions).
DIFFICULTY_OUTPUTS = []
difficulty_outputs = lambda: DIFFICULTY_OUTPUTS

if DIFFICULTY_ENABLED:
    SNLI_DIR, TAGGING_DIR = DIFFICULTY_DIRS["snli_dir"], DIFFICULTY_DIRS["tagging_dir"]
    SNLI_FILES = [str(snli_file(SNLI_DIR, split)) for split in SNLI_SPLITS]
    TAGGING_FILES = [f"{TAGGING_DIR}/{split}.txt" for split in SNLI_SPLITS]
    # Real data is checked before planning: a wrong path is one line naming the key.
    if not DIFFICULTY_DEMO["generate"]:
        for _key, _files in (("snli_dir", SNLI_FILES), ("tagging_dir", TAGGING_FILES)):
            for _file in _files:
                if not os.path.isfile(_file):
                    raise WorkflowError(
                        f"missing difficulty data file {_file} -- config key 'difficulty.{_key}' "
                        f"({DIFFICULTY[_key]!r}) must name a folder holding "
                        + ("snli_1.0_{train,dev,test}.txt (SNLI 1.0 raw)" if _key == "snli_dir"
                           else "{train,dev,test}.txt (CoNLL word ... tag, or CoNLL-2012 *_conll lines)")
                        + ", or set difficulty.demo.generate: true for offline data"
                    )
    # The job reads the section as JSON, with the data folders resolved.
    DIFFICULTY_PARAMS = json.dumps({**DIFFICULTY, **DIFFICULTY_DIRS}, sort_keys=True)
    DIFFICULTY_OUTPUTS = [f"{RESULTS}/tables/difficulty.{ext}" for ext in ("md", "csv", "tex")]


if DIFFICULTY_ENABLED and DIFFICULTY_DEMO["generate"]:

    rule difficulty_data:
        output:
            SNLI_FILES,
            TAGGING_FILES,
        log:
            f"{LOGS}/difficulty/data.log",
        benchmark:
            f"{BENCHMARKS}/difficulty/data.tsv"
        params:
            snli_dir=lambda wildcards, output: str(Path(output[0]).parent),
            tagging_dir=lambda wildcards, output: str(Path(output[-1]).parent),
            seed=DIFFICULTY_DEMO.get("seed", 0),
            size=DIFFICULTY_DEMO.get("size", "small"),
        threads: 1
        conda:
            "../../environment.yml"
        shell:
            "hashee difficulty-data --snli-dir {params.snli_dir:q} --tagging-dir {params.tagging_dir:q}"
            " --seed {params.seed} --size {params.size} > {log:q} 2>&1"


if DIFFICULTY_ENABLED:

    rule difficulty_run:
        input:
            data=lambda wildcards: TAGGING_FILES if wildcards.study == "token" else SNLI_FILES,
            backbone=lambda wildcards: standin_input(DIFFICULTY["tagging_backbone" if wildcards.study == "token" else "backbone"]),
        output:
            f"{RESULTS}/difficulty/{{study}}.csv",
        log:
            f"{LOGS}/difficulty/{{study}}.log",
        benchmark:
            f"{BENCHMARKS}/difficulty/{{study}}.tsv"
        wildcard_constraints:
            study="|".join(DIFFICULTY_STUDIES),
        params:
            json=DIFFICULTY_PARAMS,
            seed=DIFFICULTY.get("seed", 42),
            workdir=lambda wildcards: f"{WORK}/difficulty/{wildcards.study}",
            gpus=GPUS,
            gpu_locks=GPU_LOCK_DIR,
            gpu_slots=launch_detail(GPU_SLOTS),
        threads: 1
        priority: 10  # long jobs: started early, they do not form the DAG's tail
        resources:
            gpu=1,
            mem_mb=8000,
            runtime=240,
        conda:
            "../../environment.yml"
        shell:
            "OMP_NUM_THREADS={threads} python {params.gpu_slots} --slots {params.gpus}"
            " --lock-dir {params.gpu_locks:q}/$(uname -n) --"
            " hashee difficulty-run {wildcards.study} --params {params.json:q} --seed {params.seed}"
            " --workdir {params.workdir:q} --out {output:q} > {log:q} 2>&1"

    rule difficulty_table:
        input:
            rows=[f"{RESULTS}/difficulty/{study}.csv" for study in DIFFICULTY_STUDIES],
            provenance=f"{RESULTS}/provenance.json",  # named in the caption
        output:
            md=f"{RESULTS}/tables/difficulty.md",
            csv=f"{RESULTS}/tables/difficulty.csv",
            tex=f"{RESULTS}/tables/difficulty.tex",
        log:
            f"{LOGS}/difficulty/table.log",
        benchmark:
            f"{BENCHMARKS}/difficulty/table.tsv"
        params:
            out_dir=lambda wildcards, output: str(Path(output.md).parent),
            config_name=NAME,
        threads: 1
        conda:
            "../../environment.yml"
        shell:
            "hashee difficulty-table --rows {input.rows:q} --out-dir {params.out_dir:q}"
            " --config-name {params.config_name:q} > {log:q} 2>&1"
