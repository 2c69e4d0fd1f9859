"""The report's HTML pages (`hashee report-page`) and the config name `make report` writes under.
The report itself, built from the tiny run and opened in Chromium, is tested in test_workflow.py."""

import json

import pytest
from workflow_scripts import load

from hashee import cli
from hashee.core.errors import HasheeError
from hashee.measure.report import provenance_page, table_page, write_page

TABLE = """| model | SST-2 | note |
|:--|--:|:--|
| HashEE | 91.2 (2.0×) | <script>alert(1)</script> |
| static-1L | 80.1 (12.0×) | — |

- Δ: ours minus the paper's.
- Provenance: results/demo/provenance.json.
"""


def test_table_page_renders_the_table_and_its_notes_and_never_raw_html():
    page = table_page(TABLE, "ELUE (demo)")
    assert page.count("<tr>") == 3 and page.count("</th>") == 3 and ">HashEE</td>" in page
    assert "<li>Δ: ours minus the paper's.</li>" in page and "<title>ELUE (demo)</title>" in page
    assert "<script>" not in page and "&lt;script&gt;" in page  # a cell's markup is shown, not run
    assert "src=" not in page and "<link" not in page  # self-contained: nothing loaded from elsewhere
    with pytest.raises(HasheeError, match="no Markdown table"):
        table_page("just a paragraph\n", "empty")


def test_provenance_page_lists_nested_keys():
    page = provenance_page({"git_commit": "abc", "packages": {"torch": "2.13.0"}, "data": [{"path": "x.tsv"}],
                            "dirty": False}, "Provenance")
    for key, value in (("git_commit", "abc"), ("packages.torch", "2.13.0"), ("data[0].path", "x.tsv"), ("dirty", "false")):
        assert f'<td class="key">{key}</td><td>{value}</td>' in page


def test_report_page_cli_writes_atomically_and_refuses_bad_input_in_one_line(tmp_path, capsys):
    (tmp_path / "elue.md").write_text(TABLE)
    assert cli.main(["report-page", str(tmp_path / "elue.md"), str(tmp_path / "out" / "elue.html")]) == 0
    assert "<table>" in (tmp_path / "out" / "elue.html").read_text()
    (tmp_path / "provenance.json").write_text(json.dumps({"git_commit": "abc"}))
    write_page(tmp_path / "provenance.json", tmp_path / "out" / "provenance.html")
    bad = tmp_path / "broken.json"
    bad.write_text('{"a": 1,\n oops}')
    assert cli.main(["report-page", str(bad), str(tmp_path / "out" / "broken.html")]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and f"{bad}:2: not valid JSON" in err
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["elue.html", "provenance.html"]  # nothing half-written


def test_config_name_follows_snakemakes_merge_order(tmp_path):
    config_name = load("config_name").config_name
    default = tmp_path / "config.yaml"
    default.write_text("name: demo\ntasks: [SST-2]\n")
    (tmp_path / "paper.yaml").write_text("name: paper\n")
    (tmp_path / "extra.yaml").write_text("seeds: [1]\n")  # no name: the earlier one stands
    assert config_name([], default) == "demo"
    assert config_name(["all", "--cores", "8", "--configfile", str(tmp_path / "paper.yaml"),
                        str(tmp_path / "extra.yaml")], default) == "paper"
    assert config_name(["--configfile", str(tmp_path / "paper.yaml"), "--config", "name=mine"], default) == "mine"
    with pytest.raises(SystemExit, match="nope.yaml: cannot read"):
        config_name(["--configfile", str(tmp_path / "nope.yaml")], default)
