"""hf_mixup.paper against the paper's own text (../shared/paper/mixup-iclr2018.md beside the checkout, its
tables as tab-separated lines), and the findings' lines."""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest

from hf_mixup import paper

ROOT = Path(__file__).resolve().parents[1]
# The shared folder beside the checkout; a clone made elsewhere (e.g. /tmp) finds it at the workspace's own path.
PAPER_CANDIDATES = [Path(os.environ["HF_MIXUP_PAPER"])] if os.environ.get("HF_MIXUP_PAPER") else []
PAPER_CANDIDATES += [ROOT.parent / "shared" / "paper" / "mixup-iclr2018.md",
                     Path("/work/shared/paper/mixup-iclr2018.md")]


@pytest.fixture(scope="module")
def text() -> str:
    found = next((path for path in PAPER_CANDIDATES if path.is_file()), None)
    assert found is not None, (f"the paper's text is read from the shared folder beside the checkout (looked in "
                               f"{', '.join(map(str, PAPER_CANDIDATES))}); set HF_MIXUP_PAPER to its path")
    return found.read_text()


def rows_between(text: str, start: str, end: str) -> list[list[str]]:
    """The tab-separated rows from the line starting with ``start`` to the next line starting with ``end``, HTML
    tags dropped, each row's cells stripped."""
    lines = text.splitlines()
    first = next(k for k, line in enumerate(lines) if line.startswith(start))
    last = next(k for k in range(first + 1, len(lines)) if lines[k].startswith(end))
    return [[re.sub(r"<[^>]+>", "", cell).strip() for cell in line.split("\t")]
            for line in lines[first + 1:last] if "\t" in line]


def numbers(row: list[str]) -> list[float]:
    return [float(cell) for cell in row if re.fullmatch(r"\d+(\.\d+)?", cell)]


def test_figure3a_every_cifar_result_matches_the_text(text):
    rows = rows_between(text, "Dataset\tModel\tERM\t", "(a) Test errors for the CIFAR")
    printed, dataset = {}, None
    for row in rows:
        dataset = row[0] or dataset
        printed[dataset, row[1]] = tuple(numbers(row[2:]))
    assert printed == paper.FIGURE3A and len(printed) == 6


def test_table2_every_row_matches_the_text(text):
    rows = rows_between(text, "Label corruption\tMethod", "Table 2:")[1:]  # the first row is the sub-header
    assert len(rows) == len(paper.TABLE2) == 12
    for printed, row in zip(rows, paper.TABLE2):
        assert numbers(printed) == [row.best, row.last, row.real, row.corrupted], printed
        if printed[0]:
            assert printed[0] == f"{round(row.noise * 100)}%"
    assert paper.TABLE2[3].method == "mixup + dropout (alpha = 4, p = 0.1)"  # as printed, p outside the text's grid


def test_table3_white_and_black_box_match_the_text(text):
    white = rows_between(text, "Metric\tMethod\tFGSM\tI-FGSM", "(a) White box")
    after_white = text[text.index("(a) White box"):]
    black = rows_between(after_white, "Metric\tMethod\tFGSM\tI-FGSM", "(b) Black box")
    for setting, rows in (("white box", white), ("black box", black)):
        assert len(rows) == 4
        for k, metric in enumerate(("top1", "top5")):
            erm, mixup = numbers(rows[2 * k]), numbers(rows[2 * k + 1])
            for column, attack in enumerate(("fgsm", "ifgsm")):
                assert paper.TABLE3[(setting, metric, attack)] == (erm[column], mixup[column])


def test_table4_all_six_sets_match_the_text(text):
    rows = rows_between(text, "Dataset\tERM", "Table 4:")
    printed = {}
    for row in rows:
        printed[row[0]] = tuple(numbers(row[1:3]))
        printed[row[3]] = tuple(numbers(row[4:6]))
    assert {name.lower(): value for name, value in printed.items()} == {
        name.lower(): value for name, value in paper.TABLE4.items()}


def test_table5_all_22_rows_at_both_weight_decays_match_the_text(text):
    rows = rows_between(text, "Method\tSpecification", "Table 5:")[1:]  # the first row is the sub-header
    assert len(rows) == len(paper.TABLE5) == 22
    for printed, (name, errors) in zip(rows, paper.TABLE5.items()):
        assert tuple(numbers(printed)[-2:]) == errors, (name, printed)
    assert paper.TABLE5["mixup_ac_rp"] == (4.24, 4.68) and paper.TABLE5["noise_0.2"] == (7.16, 7.24)


def test_figure4_speech_table_matches_the_text(text):
    rows = rows_between(text, "Model\tMethod\tValidation set", "Figure 4:")
    assert [tuple(numbers(row)[-2:]) for row in rows] == list(paper.FIGURE4.values())


def test_every_setting_names_the_papers_data_and_model():
    assert "CIFAR-10" in paper.TABLE2_SETTING and "PreAct ResNet-18" in paper.TABLE2_SETTING
    assert "200 epochs" in paper.TABLE2_SETTING and "200 epochs" in paper.TABLE5_SETTING
    assert "ImageNet" in paper.TABLE3_SETTING and "ResNet-101" in paper.TABLE3_SETTING
    assert "UCI" in paper.TABLE4_SETTING and "CIFAR-10" in paper.TABLE5_SETTING


def test_the_papers_own_tables_bear_out_its_findings_where_it_says_so():
    """Each check run on the paper's own table: they hold, except where the printed table itself falls short."""
    table2 = paper.corrupted_label_checks(paper.table2_by_family())
    assert all(all(items.values()) for items in table2.values()), table2
    table3 = paper.adversarial_checks(paper.TABLE3)
    assert all(all(items.values()) for items in table3.values()), table3
    table4 = paper.uci_checks(paper.TABLE4)
    assert all(all(items.values()) for items in table4.values()), table4
    table5 = paper.ablation_checks(paper.TABLE5)
    failing = {claim: [k for k, ok in items.items() if not ok] for claim, items in table5.items() if not all(items.values())}
    assert failing == {"Gaussian noise regularises little: like ERM, it prefers the larger weight decay": ["sigma = 0.2"]}


def test_figure4s_findings_on_the_papers_own_figure():
    """mixup beats ERM for VGG-11 at both alphas and errs on both splits; for LeNet, the figure shows ERM ahead,
    against the text's "outperforms ERM on this task"; the VGG-11 gain is the larger."""
    checks = paper.speech_checks(paper.FIGURE4)
    for claim in ("mixup has a lower test error than ERM", "mixup has a lower validation error than ERM"):
        assert checks[claim] == {"LeNet alpha 0.1": False, "LeNet alpha 0.2": False,
                                 "VGG-11 alpha 0.1": True, "VGG-11 alpha 0.2": True}
    assert list(checks.values())[2] == {"": True}
    one_model = paper.speech_checks({key: errors for key, errors in paper.FIGURE4.items() if key[0] == "vgg11"})
    assert list(one_model.values())[2] == {}  # the two models are compared only where both are there


def test_finding_lines_say_where_each_side_fails():
    same = paper.Finding("A", {"20%": True, "50%": True}, {"20%": True, "50%": True})
    assert same.line() == "- A: agrees"
    partly = paper.Finding("B", {"20%": True, "50%": True}, {"20%": True, "50%": False})
    assert partly.line() == "- B: agrees at 20%, differs at 50%"
    opposite = paper.Finding("C", {"": True}, {"": False})
    assert opposite.line() == "- C: differs (it holds in the paper, not in ours)"
    neither = paper.Finding("D", {"": False}, {"": False})
    assert neither.line() == "- D: agrees (it holds in neither)"
    only_shared = paper.Finding("E", {"20%": False, "50%": True}, {"50%": True})
    assert only_shared.line() == "- E: agrees" and only_shared.items == ["50%"]
    both = paper.Finding("F", {"a": False, "b": True}, {"a": False, "b": True})
    assert both.line() == "- F: agrees (the paper: not at a; ours: not at a)"
    crossed = paper.Finding("G", {"a": False, "b": True}, {"a": True, "b": False})
    assert crossed.line() == "- G: differs (the paper: not at a; ours: not at b)"


def test_the_site_findings_hold_on_the_papers_table5_and_fail_when_a_deeper_site_wins():
    assert all(item[""] for item in paper.site_checks(paper.table5_sites()).values())
    reversed_sites = {"erm": 5.0, "sites": [("inputs", 6.0), ("pooled", 4.0)]}
    assert [item[""] for item in paper.site_checks(reversed_sites).values()] == [True, False, False]


def test_compare_runs_one_check_on_both_tables():
    ours = {row: (errors[0] + 7, errors[1] + 7) for row, errors in paper.TABLE5.items()}
    ours["mixup_ac_rp"] = (12.02, 11.78)  # prefers the larger weight decay, unlike the paper's
    findings = {f.claim: f for f in paper.compare(paper.ablation_checks, paper.TABLE5, ours)}
    assert not findings["mixup prefers the smaller weight decay (1e-4)"].agrees
    assert findings["ERM prefers the larger weight decay (5e-4)"].agrees


# --------------------------------------------------------------------------------------------- the results pages

# Each reproduction page and the function of its runner that renders it from the page's json alone.
PAGES = {
    "ablations": ("ablations.py", "render"),
    "label_noise_mlp": ("reproduce_label_noise.py", "render"),
    "label_noise_preact": ("reproduce_label_noise.py", "render"),
    "attack_fashion_mnist": ("reproduce_attacks.py", "render"),
    "uci_erm_vs_mixup": ("reproduce_uci.py", "render"),
    "gan_figure5": ("reproduce_gan.py", "render_figure5"),
    "gan_sweep": ("reproduce_gan.py", "render_sweep"),
    "between_examples_fashion_mnist": ("analyze.py", "render"),
    "speech_lenet_erm_vs_mixup": ("reproduce_speech.py", "render"),
    "speech_vgg11_erm_vs_mixup": ("reproduce_speech.py", "render"),
    "vit_layers_fashion_mnist": ("reproduce_layers.py", "render"),
    "text_layers_rotten_tomatoes": ("reproduce_layers.py", "render"),
}


@pytest.mark.parametrize("page", sorted(PAGES))
def test_each_results_page_is_its_json_rendered(page):
    """The committed page is exactly what its runner renders from the committed json: our figures on the page are
    those the runs recorded, and the paper's columns and the findings' lines are the renderer's, not hand edits."""
    import json
    import runpy

    script, function = PAGES[page]
    render = runpy.run_path(str(ROOT / "scripts" / script), run_name=f"render_{page}")[function]
    record = json.loads((ROOT / "results" / f"{page}.json").read_text())
    assert render(record) == (ROOT / "results" / f"{page}.md").read_text()


def test_the_long_schedule_page_is_its_json_rendered():
    """The long-schedule page (no findings section: its verdict lines weigh each gap against the seeds' spread) is
    what reproduce_long.py renders from the committed json, and docs/reproductions.md quotes its table rows."""
    import json
    import runpy

    render = runpy.run_path(str(ROOT / "scripts" / "reproduce_long.py"), run_name="render_long")["render"]
    record = json.loads((ROOT / "results" / "long_fashion_mnist.json").read_text())
    page = (ROOT / "results" / "long_fashion_mnist.md").read_text()
    assert render(record) == page
    docs = (ROOT / "docs" / "reproductions.md").read_text().splitlines()
    rows = [line for line in page.splitlines() if line.startswith(("| ERM |", "| mixup"))]
    assert len(rows) == len(record["runs"]) and [row for row in rows if row not in docs] == []
    # The README's row quotes the page: its seed count, and each "mean ± sd" is a last-error cell of the page.
    (readme_row,) = [line for line in (ROOT / "README.md").read_text().splitlines() if line.startswith("| [to convergence]")]
    cells = [[c.strip() for c in row.strip("|").split("|")] for row in rows]
    assert {c[1] for c in cells} == {re.search(r"(\d+) seeds", readme_row).group(1)}
    quoted = re.findall(r"\d+\.\d+ ± \d+\.\d+", readme_row)
    assert len(quoted) == len(rows) and set(quoted) == {c[3] for c in cells}


def test_a_speech_page_of_both_models_checks_the_finding_that_compares_them():
    """One results file for LeNet and VGG-11 (`--output` without {model}): the paper's columns beside each model's
    rows, and the finding about the larger model, which a page of one model leaves out."""
    import json
    import runpy

    render = runpy.run_path(str(ROOT / "scripts" / "reproduce_speech.py"), run_name="render_speech")["render"]
    record = json.loads((ROOT / "results" / "speech_lenet_erm_vs_mixup.json").read_text())
    record["results"].update(json.loads((ROOT / "results" / "speech_vgg11_erm_vs_mixup.json").read_text())["results"])
    page = render(record)
    assert "| vgg11 | mixup alpha 0.2 | 48.0 ± 4.7 | 55.4 ± 4.0 | 3.9 | 3.4 |" in page
    assert "| lenet | mixup alpha 0.1 | 47.6 ± 5.4 | 57.4 ± 3.3 | 10.1 | 10.8 |" in page
    assert ("- mixup helps most with VGG-11, the larger model: its better alpha lowers ERM's test error by more than "
            "LeNet's: differs (it holds in the paper, not in ours)") in page.splitlines()
    single = (ROOT / "results" / "speech_vgg11_erm_vs_mixup.md").read_text()
    assert "- mixup helps most" not in single and "one results file holds both models" in single


def test_every_reproduction_page_quotes_the_paper_with_its_setting_and_the_findings():
    for page in PAGES:
        text = (ROOT / "results" / f"{page}.md").read_text()
        assert "another experiment:" in text, page
        assert "Where our runs agree with the paper's findings" in text, page
        assert any(line.startswith("- ") and line.rstrip().endswith(("agrees", "differs", ")"))
                   for line in text.splitlines()), page


def test_the_reproductions_page_quotes_the_findings_and_table5_as_the_results_pages_have_them():
    docs = (ROOT / "docs" / "reproductions.md").read_text()
    pages = "\n".join((ROOT / "results" / f"{page}.md").read_text() for page in PAGES).splitlines()
    quoted = [line for line in docs.splitlines() if line.startswith("- ") and re.search(r": (agrees|differs)", line)]
    assert len(quoted) >= 25
    assert [line for line in quoted if line not in pages] == []
    table5 = [line for line in (ROOT / "results" / "ablations.md").read_text().splitlines() if line.startswith("| ")]
    assert len(table5) == 23 and all(line in docs.splitlines() for line in table5)
