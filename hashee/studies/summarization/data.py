"""Summarization data: the paper's four data sets read from local files, and two synthetic ones.

Layouts (also in docs/summarization.md, "Data"); `data_dir` is the data set's own
folder — a folder holding `<dataset>/` (what `write_demo` writes) is accepted too:
- `cnndm` (CNN/DailyMail 3.0.0, non-anonymized): the CSV export of Hugging Face `cnn_dailymail`
  — `{train,validation,test}.csv`, columns id, article, highlights, highlight sentences joined by
  "\\n" — or fairseq/BART's `{train,val,test}.{source,target}` (one example per line, the two files
  line-aligned; sentences joined by spaces). The CSV export wins when both are present.
- `reddit` (Reddit TIFU, Kim et al. 2019), the "long" variant: `tifu_all_tokenized_and_filtered.json`
  (JSON lines), source `selftext_without_tldr`, target `tldr`; posts without a tldr are dropped
  (~42k remain). The release has no splits. With TFDS's `reddit_tifu_long_splits.json` (the 80/10/10
  split PEGASUS used: {"train", "validation", "test"} -> post ids) beside it, that split is used;
  otherwise a permutation seeded by `REDDIT_SPLIT_SEED` (a constant, or the `split_seed` argument)
  takes 80 % / 10 % / 10 % as train / dev / test. Each split keeps file order.
- `csl`, `ttnews`: CPT's `{train,dev,test}.json`, each a JSON list of {"article", "summarization"}
  (JSON lines are accepted too).
- `demo-en` (cnndm's CSV layout) and `demo-zh` (CSL layout): synthetic, from `write_demo`.

Quirks handled: a UTF-8 BOM, CRLF line endings, quotes, commas and newlines inside CSV fields, and
documents of any length (no csv field-size limit). An example whose source or target is empty after
stripping is skipped, with one warning line per file on stderr giving the count and the first
file:line — real releases carry a few such rows, and failing on them would make the data unusable.
Every other problem is a one-line `HasheeError` naming the file (and line).

THE DEMO DATA IS SYNTHETIC: its ROUGE says nothing about the paper's data sets.
"""

from __future__ import annotations

import csv
import hashlib
import json
import random
import re
import sys
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from hashee.core.errors import HasheeError, unknown_name
from hashee.core.io import atomic_dir, read_text_checked, split_text_lines

SPLITS = ("train", "dev", "test")
REDDIT_FILE = "tifu_all_tokenized_and_filtered.json"
REDDIT_SPLITS_FILE = "reddit_tifu_long_splits.json"  # TFDS's long_split (PEGASUS), optional
REDDIT_SPLIT_SEED = 2022
REDDIT_FRACTIONS = (0.8, 0.1)  # train, dev; test takes the rest

# CNN/DM file names per split, for each of the two accepted layouts.
_CNNDM_CSV = {"train": "train.csv", "dev": "validation.csv", "test": "test.csv"}
_FAIRSEQ = {"train": "train", "dev": "val", "test": "test"}


@dataclass(frozen=True)
class SummDataset:
    name: str
    language: str  # "en" or "zh": picks the ROUGE convention and the tokenizer check
    layout: str  # "cnndm", "reddit-tifu" or "cpt-json" (module docstring)
    description: str


DATASETS: dict[str, SummDataset] = {d.name: d for d in (
    SummDataset("cnndm", "en", "cnndm", "CNN/DailyMail 3.0.0 non-anonymized: article -> highlights"),
    SummDataset("reddit", "en", "reddit-tifu", "Reddit TIFU long: post -> tldr, seeded 80/10/10 split"),
    SummDataset("csl", "zh", "cpt-json", "CSL (CLGE): computer-science abstract -> title"),
    SummDataset("ttnews", "zh", "cpt-json", "TTNews (NLPCC 2017): Toutiao news article -> summary"),
    SummDataset("demo-en", "en", "cnndm", "synthetic English news: lead facts -> highlights (demo)"),
    SummDataset("demo-zh", "zh", "cpt-json", "synthetic Chinese news: lead fact -> title (demo)"),
)}


@dataclass(frozen=True)
class Example:
    source: str
    target: str
    where: str  # "file:line" of the example's first line, for error messages


def get_dataset(name: str) -> SummDataset:
    if name not in DATASETS:
        raise unknown_name("summarization dataset", name, DATASETS)
    return DATASETS[name]


# --------------------------------------------------------------------------------------------
# loading

def _dataset_dir(dataset: SummDataset, data_dir) -> Path:
    path = Path(data_dir)
    if not path.is_dir():
        raise HasheeError(f"{path}: {dataset.name} data folder not found")
    nested = path / dataset.name
    # write_demo's out_dir holds one folder per data set; accept it as well as the folder itself.
    if nested.is_dir() and not any(path.glob("*.csv")) and not any(path.glob("*.json")):
        return nested
    return path


def load_split(dataset: str, data_dir, split: str, *, split_seed: int = REDDIT_SPLIT_SEED) -> list[Example]:
    """The examples of one split ("train", "dev" or "test") of a data set, in file order.
    `split_seed` only matters for Reddit TIFU, which ships without splits."""
    spec = get_dataset(dataset)
    if split not in SPLITS:
        raise unknown_name("split", split, SPLITS)
    folder = _dataset_dir(spec, data_dir)
    if spec.layout == "cnndm":
        examples = _read_cnndm(folder, split)
    elif spec.layout == "reddit-tifu":
        examples = _read_reddit(folder / REDDIT_FILE, split, split_seed, folder / REDDIT_SPLITS_FILE)
    else:
        examples = _read_cpt_json(folder / f"{split}.json")
    if spec.language == "zh":
        _check_chinese_text(spec, examples)
    return examples


def _missing(path: Path, layout: str) -> HasheeError:
    return HasheeError(f"{path}: file not found (expected layout: {layout})")


def _keep_nonempty(rows: Iterable[tuple[str, str, str]], path: Path) -> list[Example]:
    """Examples from (source, target, where) rows, stripped; empty ones are skipped and counted."""
    kept, skipped = [], []
    for source, target, where in rows:
        source, target = source.strip(), target.strip()
        if source and target:
            kept.append(Example(source, target, where))
        else:
            skipped.append(where)
    if skipped:
        print(f"warning: {path}: skipped {len(skipped)} example(s) with an empty source or target "
              f"(first at {skipped[0]})", file=sys.stderr)
    if not kept:
        raise HasheeError(f"{path}: no example with both a source and a target")
    return kept


def _read_cnndm(folder: Path, split: str) -> list[Example]:
    csv_path = folder / _CNNDM_CSV[split]
    if csv_path.is_file():
        return _keep_nonempty(_csv_rows(csv_path), csv_path)
    source, target = (folder / f"{_FAIRSEQ[split]}.{ext}" for ext in ("source", "target"))
    if source.is_file() and target.is_file():
        return _keep_nonempty(_fairseq_rows(source, target), source)
    raise HasheeError(f"{folder}: no CNN/DM {split} data: expected {_CNNDM_CSV[split]} (Hugging Face CSV export: "
                      f"id, article, highlights) or {source.name} + {target.name} (fairseq)")


def _csv_rows(path: Path):
    # The csv module's default field limit (128 KiB) is below some real articles.
    csv.field_size_limit(min(sys.maxsize, 2**31 - 1))
    try:
        with path.open(encoding="utf-8-sig", newline="") as handle:
            reader = csv.reader(handle)
            header = next(reader, None)
            if header is None:
                raise HasheeError(f"{path}:1: empty file; expected header id,article,highlights")
            columns = {name.strip(): i for i, name in enumerate(header)}
            if "article" not in columns or "highlights" not in columns:
                raise HasheeError(f"{path}:1: header {','.join(header)!r} lacks article/highlights "
                                  "(expected the cnn_dailymail CSV export: id,article,highlights)")
            article, highlights = columns["article"], columns["highlights"]
            first_line = reader.line_num + 1  # a record may span several lines (newlines inside quotes)
            for record in reader:
                where = f"{path}:{first_line}"
                if record:  # blank line
                    if len(record) != len(header):
                        raise HasheeError(f"{where}: {len(record)} field(s), the header has {len(header)}")
                    yield record[article], record[highlights], where
                first_line = reader.line_num + 1
    except csv.Error as err:
        raise HasheeError(f"{path}: unreadable CSV ({err})") from None
    except UnicodeDecodeError as err:
        raise HasheeError(f"{path}: not valid UTF-8 ({err.reason} at byte {err.start})") from None


def _lines(path: Path) -> list[str]:
    lines = split_text_lines(read_text_checked(path))
    if lines and lines[-1] == "":
        lines.pop()
    return lines


def _fairseq_rows(source: Path, target: Path):
    sources, targets = _lines(source), _lines(target)
    if len(sources) != len(targets):
        raise HasheeError(f"{target}: {len(targets)} line(s), but {source} has {len(sources)}; "
                          "the two files must be line-aligned")
    for number, (src, tgt) in enumerate(zip(sources, targets), start=1):
        yield src, tgt, f"{source}:{number}"


def _json_error(path: Path, err: json.JSONDecodeError, line_offset: int = 0) -> HasheeError:
    return HasheeError(f"{path}:{err.lineno + line_offset}: invalid JSON ({err.msg}, column {err.colno})")


def _reddit_split_ids(path: Path, split: str) -> set[str]:
    try:
        table = json.loads(read_text_checked(path))
    except json.JSONDecodeError as err:
        raise _json_error(path, err) from None
    key = {"dev": "validation"}.get(split, split)
    if not isinstance(table, dict) or not isinstance(table.get(key), list):
        raise HasheeError(f"{path}: expected {{\"train\", \"validation\", \"test\"}} -> lists of post ids (TFDS layout)")
    return set(map(str, table[key]))


def _read_reddit(path: Path, split: str, seed: int, splits_file: Path) -> list[Example]:
    if not path.is_file():
        raise _missing(path, f"Reddit TIFU release: {REDDIT_FILE}, JSON lines")
    ids = _reddit_split_ids(splits_file, split) if splits_file.is_file() else None
    rows = []
    try:
        with path.open(encoding="utf-8-sig") as handle:
            for number, line in enumerate(handle, start=1):
                if not line.strip():
                    continue
                where = f"{path}:{number}"
                try:
                    post = json.loads(line)
                except json.JSONDecodeError as err:
                    raise _json_error(path, err, number - 1) from None
                if not isinstance(post, dict) or "selftext_without_tldr" not in post:
                    raise HasheeError(f"{where}: expected a post object with 'selftext_without_tldr' and 'tldr'")
                tldr = post.get("tldr")
                if not tldr:  # the long variant: posts without a tldr are not examples at all
                    continue
                if ids is not None and str(post.get("id")) not in ids:
                    continue
                rows.append((str(post["selftext_without_tldr"] or ""), str(tldr), where))
    except UnicodeDecodeError as err:
        raise HasheeError(f"{path}: not valid UTF-8 ({err.reason} at byte {err.start})") from None
    examples = _keep_nonempty(rows, path)
    if ids is not None:
        return examples
    order = list(range(len(examples)))
    random.Random(seed).shuffle(order)
    n_train = int(REDDIT_FRACTIONS[0] * len(order))
    n_dev = int(REDDIT_FRACTIONS[1] * len(order))
    chosen = {"train": order[:n_train], "dev": order[n_train:n_train + n_dev],
              "test": order[n_train + n_dev:]}[split]
    return [examples[i] for i in sorted(chosen)]


def _json_objects(path: Path, text: str):
    """(object, line) of a JSON list (or JSON lines), with each object's first line number."""
    decoder = json.JSONDecoder()
    position, line = 0, 1

    def skip(pos: int, chars: str = " \t\r\n") -> int:
        while pos < len(text) and text[pos] in chars:
            pos += 1
        return pos

    def advance(to: int) -> None:
        nonlocal position, line
        line += text.count("\n", position, to)
        position = to

    advance(skip(0))
    is_list = text.startswith("[", position)
    if is_list:
        advance(skip(position + 1))
    while position < len(text):
        if is_list and text[position] == "]":
            advance(skip(position + 1))
            if position < len(text):
                raise HasheeError(f"{path}:{line}: unexpected text after the closing ']'")
            return
        try:
            obj, end = decoder.raw_decode(text, position)
        except json.JSONDecodeError as err:
            raise _json_error(path, err) from None
        yield obj, line
        advance(skip(end))
        if is_list:
            if position < len(text) and text[position] == ",":
                advance(skip(position + 1))
            elif position < len(text) and text[position] != "]":
                raise HasheeError(f"{path}:{line}: invalid JSON (expected ',' or ']' between list items)")
    if is_list:
        raise HasheeError(f"{path}:{line}: invalid JSON (the list is not closed with ']')")


def _read_cpt_json(path: Path) -> list[Example]:
    if not path.is_file():
        raise _missing(path, 'CPT summarization JSON: {train,dev,test}.json, a list of {"article", "summarization"}')
    rows = []
    for obj, line in _json_objects(path, read_text_checked(path)):
        where = f"{path}:{line}"
        if not isinstance(obj, dict):
            raise HasheeError(f"{where}: expected an object {{\"article\", \"summarization\"}}, got {type(obj).__name__}")
        for key in ("article", "summarization"):
            if key not in obj:
                raise HasheeError(f"{where}: missing field {key!r} (CPT layout: {{\"article\", \"summarization\"}})")
            if not isinstance(obj[key], str):
                raise HasheeError(f"{where}: field {key!r} must be a string, got {type(obj[key]).__name__}")
        rows.append((obj["article"], obj["summarization"], where))
    return _keep_nonempty(rows, path)


# --------------------------------------------------------------------------------------------
# Chinese checks

_CJK = re.compile("[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\U00020000-\U0002ebef]")
# The most frequent Chinese characters: the sample that `check_tokenizer` tries when it is given
# no examples (a real CSL/TTNews text uses nearly all of them).
COMMON_CJK = ("的一是不了在人有我他这个们中来上大为和国地到以说时要就出会可也你对生能而子那得于着下自之年过发后"
              "作里用道行所然家种事成方多经么去法学如都同现当没动面起看定天分还进好小部其些主样理心她本前开但因只从想实")


def _check_chinese_text(spec: SummDataset, examples: Sequence[Example]) -> None:
    without = [ex for ex in examples if not _CJK.search(ex.source)]
    if 2 * len(without) > len(examples):
        raise HasheeError(f"{without[0].where}: {spec.name} is a Chinese data set, but {len(without)} of "
                          f"{len(examples)} sources contain no CJK character (an English file?)")


def _cjk_sample(texts: Iterable[str], limit: int) -> list[str]:
    seen: dict[str, None] = {}
    for text in texts:
        for char in _CJK.findall(text):
            seen.setdefault(char)
            if len(seen) >= limit:
                return list(seen)
    return list(seen)


def check_tokenizer(dataset: str, tokenizer, examples: Sequence[Example] | None = None, *,
                    max_chars: int = 200) -> None:
    """Fail when a Chinese data set meets a tokenizer that cannot read Chinese: more than half of a
    sample's distinct CJK characters are not one vocabulary token each ([UNK], or split into
    byte pieces as an English byte-level BPE does). The sample: the CJK characters of `examples`
    (first `max_chars`), else the data set's own character set (demo-zh) or COMMON_CJK.
    English data sets pass."""
    spec = get_dataset(dataset)
    if spec.language != "zh":
        return
    if examples:
        chars = _cjk_sample((t for ex in examples for t in (ex.source, ex.target)), max_chars)
        where = examples[0].where
        if not chars:
            raise HasheeError(f"{where}: {dataset} is a Chinese data set, but its text has no CJK character")
    else:
        chars = _cjk_sample([_ZH_CHARSET if dataset == "demo-zh" else COMMON_CJK], max_chars)
        where = f"dataset {dataset}"
    unk = getattr(tokenizer, "unk_token_id", None)
    unknown = []
    for char in chars:
        ids = tokenizer(char, add_special_tokens=False)["input_ids"]
        if len(ids) != 1 or (unk is not None and ids[0] == unk):
            unknown.append(char)
    if 2 * len(unknown) > len(chars):
        name = getattr(tokenizer, "name_or_path", "") or type(tokenizer).__name__
        raise HasheeError(f"{where}: tokenizer {name} cannot read Chinese: {len(unknown)} of {len(chars)} sampled "
                          f"CJK characters are not in its vocabulary (e.g. {''.join(unknown[:8])}); "
                          "use a Chinese tokenizer (CPT's BertTokenizer)")


# --------------------------------------------------------------------------------------------
# synthetic demo data
#
# demo-en: short news stories. The first sentence states the main fact with decorations around
# it ("late last night , the police closed the main road near the river ."); half of the stories
# add a second fact marked by "also". The reference is those facts without the decorations, one
# line each ("the police closed the main road .\nthe bank also ..." minus "also"), so it is
# recoverable from the text, short (6-14 tokens) and multi-sentence often enough to exercise
# rougeLsum. Filler and distractor sentences (naming other actors and objects) surround the
# facts. All words are whole word pieces of BERT's uncased vocabulary.
# demo-zh: the same shape in Chinese (lead fact -> a title of person + action), written only
# with CJK characters that MiniLM's (BERT uncased) vocabulary holds, so the offline backbone can
# read and write it. One very long document per split exercises source truncation.

DEMO_SIZES: dict[str, dict[str, int]] = {
    "tiny": {"train": 32, "dev": 8, "test": 8},
    "small": {"train": 400, "dev": 50, "test": 50},
}
LONG_FILLERS = 60  # sentences of the one long document per split (far beyond 128 source tokens)

_ACTORS = ["the mayor", "the police", "the president", "the council", "the company", "the team",
           "the army", "the bank", "the school", "the minister", "the union", "the hospital"]
_VERBS = ["opened", "closed", "sold", "bought", "built", "won", "lost", "found", "signed", "visited",
          "moved", "started"]
_OBJECTS = ["a new bridge", "the old market", "a small hospital", "the main road", "a local school",
            "the city park", "a large farm", "the final match", "a new plan", "a new office",
            "the museum", "the station"]
_WHEN = ["", "", "on monday ,", "late last night ,", "earlier this week ,", "after a long wait ,",
         "on friday morning ,"]
_WHERE = ["", "", "in the north", "near the river", "for the first time", "after months of talks",
          "in the capital"]
_FILLERS = ["many people came to watch .", "the weather was cold and wet .",
            "it was not clear what would happen next .", 'a local man said " it was a good day " .',
            "the news was shared widely online .", "some shops stayed open late .",
            "the event lasted about two hours .", "more details will be given later .",
            "a spokesman declined to comment .", 'one woman called it " a big step " .',
            "the area was quiet again by the evening .", "officials said the cost was not known ."]
_DISTRACTORS = ["{actor} said nothing about the plan .", "{actor} has not made a statement .",
                "{obj} was busy all day .", "{obj} will stay as it is for now ."]

_ZH_PERSONS = ["王明", "李文", "張華", "陳光", "劉英", "楊春", "林秀", "田中", "山田", "松本", "高橋", "佐藤"]
_ZH_PLACES = ["東京", "北京", "南京", "上海", "西安", "山東", "河北", "江西", "長野", "福岡", "京都", "神田"]
_ZH_ACTIONS = ["出版新書", "成立新公司", "発明新車", "上大学", "出国", "発明新方法", "成立新学会", "生下一子"]
_ZH_WHEN = ["", "", "2019年，", "三月，", "十月，", "春天，", "秋天，", "2021年五月，"]
_ZH_NOUNS = ["花", "山", "水", "月", "天空", "森林", "海", "樹"]
_ZH_ADJECTIVES = ["美", "清", "高", "大", "青", "白"]
_ZH_CHARSET = "".join(_ZH_PERSONS + _ZH_PLACES + _ZH_ACTIONS + _ZH_WHEN + _ZH_NOUNS + _ZH_ADJECTIVES) + "的不"


def _join(*parts: str) -> str:
    return " ".join(p for p in parts if p)


def _en_example(rng: random.Random, long: bool) -> tuple[str, str]:
    actor, verb, obj = rng.choice(_ACTORS), rng.choice(_VERBS), rng.choice(_OBJECTS)
    sentences = [_join(rng.choice(_WHEN), actor, verb, obj, rng.choice(_WHERE), ".")]
    facts = [_join(actor, verb, obj, ".")]
    fillers = rng.sample(_FILLERS, rng.randint(1, 3)) if not long else rng.choices(_FILLERS, k=LONG_FILLERS)
    if rng.random() < 0.5:
        others = [a for a in _ACTORS if a != actor]
        fillers.append(rng.choice(_DISTRACTORS).format(actor=rng.choice(others), obj=rng.choice(_OBJECTS)))
    rng.shuffle(fillers)
    if rng.random() < 0.5:  # a second fact, marked by "also", after at least one filler
        actor2 = rng.choice([a for a in _ACTORS if a != actor])
        verb2, obj2 = rng.choice(_VERBS), rng.choice(_OBJECTS)
        fillers.insert(rng.randint(1, len(fillers)), _join(actor2, "also", verb2, obj2, rng.choice(_WHERE), "."))
        facts.append(_join(actor2, verb2, obj2, "."))
    return " ".join(sentences + fillers), "\n".join(facts)


def _zh_example(rng: random.Random, long: bool) -> tuple[str, str]:
    person, place, action = rng.choice(_ZH_PERSONS), rng.choice(_ZH_PLACES), rng.choice(_ZH_ACTIONS)
    n_fillers = LONG_FILLERS if long else rng.randint(1, 3)
    fillers = [f"{rng.choice(_ZH_PLACES)}的{rng.choice(_ZH_NOUNS)}{rng.choice(_ZH_ADJECTIVES)}。"
               for _ in range(n_fillers)]
    if rng.random() < 0.5:  # a distractor: another person who did not do another thing
        other = rng.choice([p for p in _ZH_PERSONS if p != person])
        fillers.insert(rng.randint(0, len(fillers)), f"{other}不{rng.choice(_ZH_ACTIONS)}。")
    return f"{rng.choice(_ZH_WHEN)}{place}的{person}{action}。" + "".join(fillers), person + action


def _demo_examples(make, seed: int, name: str, split: str, n: int) -> list[tuple[str, str]]:
    rng = random.Random(f"{seed}:{name}:{split}")
    long_at = rng.randrange(n)
    return [make(rng, i == long_at) for i in range(n)]


def _write_demo_en(folder: Path, seed: int, sizes: dict[str, int]) -> None:
    for split, file_name in _CNNDM_CSV.items():
        rows = _demo_examples(_en_example, seed, "demo-en", split, sizes[split])
        # The test file starts with a BOM and every file has CRLF row ends (csv's default), as
        # some exports do, so each run exercises the reader's handling of both.
        with (folder / file_name).open("w", encoding="utf-8-sig" if split == "test" else "utf-8", newline="") as f:
            writer = csv.writer(f)
            writer.writerow(["id", "article", "highlights"])
            for i, (article, highlights) in enumerate(rows):
                writer.writerow([hashlib.sha1(f"{seed}:{split}:{i}".encode()).hexdigest(), article, highlights])


def _write_demo_zh(folder: Path, seed: int, sizes: dict[str, int]) -> None:
    for split in SPLITS:
        rows = _demo_examples(_zh_example, seed, "demo-zh", split, sizes[split])
        text = json.dumps([{"article": a, "summarization": s} for a, s in rows], ensure_ascii=False, indent=1)
        (folder / f"{split}.json").write_text(text + "\n", encoding="utf-8-sig" if split == "dev" else "utf-8")


# The files write_demo makes per data set (the workflow's summ_demo_data outputs).
DEMO_FILES: dict[str, tuple[str, ...]] = {"demo-en": tuple(_CNNDM_CSV.values()),
                                          "demo-zh": tuple(f"{split}.json" for split in SPLITS)}


def write_demo(out_dir, seed: int, size: str) -> Path:
    """Write `out_dir/demo-en/` (CNN/DM CSV layout) and `out_dir/demo-zh/` (CSL layout), each
    folder atomically. Byte-identical for a given seed and size."""
    if size not in DEMO_SIZES:
        raise unknown_name("demo size", size, DEMO_SIZES)
    out_dir = Path(out_dir)
    for name, writer in (("demo-en", _write_demo_en), ("demo-zh", _write_demo_zh)):
        with atomic_dir(out_dir / name) as tmp:
            writer(tmp, seed, DEMO_SIZES[size])
    return out_dir


# The real data sets in their own layouts, with synthetic text (the rehearsal: config/rehearsal.yaml). The files
# and quirks of each release: CNN/DM's CSV export (a BOM, CRLF, newlines inside quoted fields); Reddit TIFU's one
# JSON-lines file without splits, posts without a tldr (dropped by the reader), a null selftext; CSL's JSON lists
# (a BOM on dev) and TTNews's, here as JSON lines (which the reader accepts too).
def _write_reddit(folder: Path, seed: int, sizes: dict[str, int]) -> None:
    n = sum(sizes.values())
    rows = _demo_examples(_en_example, seed, "reddit", "all", n + n // 10 + 1)
    with (folder / REDDIT_FILE).open("w", encoding="utf-8") as handle:
        for i, (post, tldr) in enumerate(rows):
            no_tldr = i % 11 == 5  # as the release: posts without a tldr
            record = {"id": hashlib.sha1(f"{seed}:reddit:{i}".encode()).hexdigest()[:6], "title": tldr.split("\n")[0],
                      "selftext": post, "selftext_without_tldr": post, "tldr": None if no_tldr else tldr.replace("\n", " "),
                      "score": i, "num_comments": i % 7, "upvote_ratio": 0.9}
            handle.write(json.dumps(record) + "\n")


def _write_ttnews(folder: Path, seed: int, sizes: dict[str, int]) -> None:
    for split in SPLITS:
        rows = _demo_examples(_zh_example, seed, "ttnews", split, sizes[split])
        lines = [json.dumps({"article": a, "summarization": t}, ensure_ascii=False) for a, t in rows]
        (folder / f"{split}.json").write_text("\n".join(lines) + "\n", encoding="utf-8")


_SYNTHETIC_WRITERS = {"cnndm": _write_demo_en, "reddit": _write_reddit, "csl": _write_demo_zh, "ttnews": _write_ttnews}


def write_synthetic(dataset: str, out_dir, seed: int, size: str) -> Path:
    """Synthetic text in the layout of real data set `dataset` (cnndm, reddit, csl, ttnews), in `out_dir`
    (atomically). For rehearsing the real data's route: its ROUGE means nothing."""
    get_dataset(dataset)
    if dataset not in _SYNTHETIC_WRITERS:
        raise unknown_name("summarization dataset with a synthetic layout", dataset, _SYNTHETIC_WRITERS)
    if size not in DEMO_SIZES:
        raise unknown_name("demo size", size, DEMO_SIZES)
    with atomic_dir(Path(out_dir)) as tmp:
        _SYNTHETIC_WRITERS[dataset](tmp, seed, DEMO_SIZES[size])
    return Path(out_dir)


def synthetic_files(dataset: str) -> tuple[str, ...]:
    """The files write_synthetic writes for `dataset`."""
    return {"cnndm": tuple(_CNNDM_CSV.values()), "reddit": (REDDIT_FILE,)}.get(
        dataset, tuple(f"{split}.json" for split in SPLITS))


__all__ = ["COMMON_CJK", "DATASETS", "DEMO_FILES", "DEMO_SIZES", "REDDIT_FILE", "REDDIT_SPLITS_FILE", "REDDIT_SPLIT_SEED", "SPLITS", "Example", "SummDataset",
           "check_tokenizer", "get_dataset", "load_split", "synthetic_files", "write_demo", "write_synthetic"]
