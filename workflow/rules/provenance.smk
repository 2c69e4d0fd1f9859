# Provenance (README, "What lands where"): results/<config>/provenance.json records the commit, the lock file,
# package versions, hardware, the SHA-256 of every data file the run reads, and the merged config.
# Its inputs are those data files (and the lock file), so it is rewritten when they change; every
# table job takes it as input and names it in its caption. Included after the stage files: it
# lists their data.

import json

PROVENANCE_LOCK_FILE = Path(workflow.basedir) / "requirements.lock"
PROVENANCE_CONFIG = json.dumps(config, sort_keys=True, default=str)
# The data the jobs read: ELUE task files (test_full.tsv with demo data), a user reference CSV,
# the difficulty study's files, and each summarization dataset's files (real data: every file of its
# folder and of the <folder>/<dataset> folder the reader also accepts).
PROVENANCE_DATA = [
    *(path for task in TASKS for path in data_files(task)),
    *([REFERENCE["file"]] if REFERENCE["file"] is not None else []),
    *((SNLI_FILES + TAGGING_FILES) if DIFFICULTY_ENABLED else []),
    *(
        f"{SUMM_PATHS[dataset]}/{name}"
        for dataset in SUMM_DATASETS
        for name in (summ_generated_files(dataset) if summ_generated(dataset) else [])
    ),
    *(
        str(path)
        for dataset in SUMM_DATASETS
        if not summ_generated(dataset)
        for folder in (Path(SUMM_PATHS[dataset]), Path(SUMM_PATHS[dataset]) / dataset)
        if folder.is_dir()
        for path in sorted(folder.iterdir())
        if path.is_file() and not path.name.startswith(".")
    ),
]


rule provenance:
    input:
        data=PROVENANCE_DATA,
        lock=[str(PROVENANCE_LOCK_FILE)] if PROVENANCE_LOCK_FILE.is_file() else [],
    output:
        f"{RESULTS}/provenance.json",
    log:
        f"{LOGS}/provenance/provenance.log",
    benchmark:
        f"{BENCHMARKS}/provenance/provenance.tsv"
    params:
        # the merged config (defaults filled in by validation); a change of it reruns this job.
        # A function: a plain string's braces (paper.yaml's ${ELUE_DIR}) would be read as wildcards.
        config=lambda wildcards: PROVENANCE_CONFIG,
        # the workflow checkout's lock file (hash null when absent) and its git state; functions, not
        # strings, as lint wants for paths
        lock_file=lambda wildcards: str(PROVENANCE_LOCK_FILE),
        repo_dir=lambda wildcards: workflow.basedir,
    threads: 1  # as the training jobs: the recorded torch_threads is theirs
    conda:
        "../../environment.yml"
    shell:
        "OMP_NUM_THREADS={threads} hashee provenance --config-json {params.config:q} --data {input.data:q}"
        " --lock-file {params.lock_file:q} --repo-dir {params.repo_dir:q} --out {output:q} > {log:q} 2>&1"
